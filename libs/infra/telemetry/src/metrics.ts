import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

export type MetricConfig<C> = Omit<C, 'registers'>;

export interface Metrics {
  /** The registry holding this service's metrics (and only them: never prom-client's global one). */
  registry: Registry;
  counter<L extends string = string>(config: MetricConfig<CounterConfiguration<L>>): Counter<L>;
  gauge<L extends string = string>(config: MetricConfig<GaugeConfiguration<L>>): Gauge<L>;
  histogram<L extends string = string>(config: MetricConfig<HistogramConfiguration<L>>): Histogram<L>;
}

export interface CreateMetricsOptions {
  /** Added as the `service` label on every metric. */
  service: string;
  /** Process metrics (CPU, memory, event-loop lag, GC). On unless turned off. */
  defaultMetrics?: boolean;
}

export function createMetrics(options: CreateMetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    counter: (config) => new Counter({ ...config, registers: [registry] }),
    gauge: (config) => new Gauge({ ...config, registers: [registry] }),
    histogram: (config) => new Histogram({ ...config, registers: [registry] }),
  };
}

export interface StartMetricsServerOptions {
  registry: Registry;
  /** 0 picks a free port; read the chosen one from the result. */
  port?: number;
  host?: string;
}

export interface MetricsServer {
  port: number;
  /** `http://<host>:<port>/metrics` */
  url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` in the Prometheus text format; every other path is 404. */
export async function startMetricsServer(options: StartMetricsServerOptions): Promise<MetricsServer> {
  const { registry } = options;
  const host = options.host ?? '0.0.0.0';
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        // A failing collector must not take the scrape endpoint down with it.
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${urlHost}:${port}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers keep connections alive; without this close() waits for their idle timeout.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
