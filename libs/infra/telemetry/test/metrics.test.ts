import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, startMetricsServer, type MetricsServer } from '../src/index.js';

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(...args: Parameters<typeof startMetricsServer>): Promise<MetricsServer> {
  const server = await startMetricsServer(...args);
  servers.push(server);
  return server;
}

describe('metrics', () => {
  it('serves counters, gauges, histograms and default metrics over HTTP with the service label', async () => {
    const metrics = createMetrics({ service: 'balancer' });
    const samples = metrics.counter({ name: 'mstar_samples_total', help: 'Samples drawn', labelNames: ['outcome'] });
    const temperature = metrics.gauge({ name: 'mstar_temperature', help: 'Current sampling temperature' });
    const latency = metrics.histogram({ name: 'mstar_step_seconds', help: 'Step time', buckets: [0.1, 1] });
    samples.inc({ outcome: 'correct' }, 3);
    samples.inc({ outcome: 'wrong' });
    temperature.set(0.7);
    latency.observe(0.05);
    latency.observe(0.5);

    const server = await start({ registry: metrics.registry, port: 0, host: '127.0.0.1' });
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    expect(body).toContain('mstar_samples_total{outcome="correct",service="balancer"} 3');
    expect(body).toContain('mstar_samples_total{outcome="wrong",service="balancer"} 1');
    expect(body).toContain('mstar_temperature{service="balancer"} 0.7');
    expect(body).toContain('mstar_step_seconds_bucket{le="0.1",service="balancer"} 1');
    expect(body).toContain('mstar_step_seconds_bucket{le="1",service="balancer"} 2');
    expect(body).toContain('mstar_step_seconds_count{service="balancer"} 2');
    expect(body).toMatch(/^process_cpu_user_seconds_total\{service="balancer"\} \d/m);
    expect(body).toMatch(/^nodejs_eventloop_lag_seconds\{service="balancer"\}/m);
  });

  it('keeps registries apart and can leave out default metrics', async () => {
    const a = createMetrics({ service: 'a', defaultMetrics: false });
    const b = createMetrics({ service: 'b', defaultMetrics: false });
    a.counter({ name: 'same_name_total', help: 'h' }).inc(2);
    b.counter({ name: 'same_name_total', help: 'h' }).inc(5);
    const body = await a.registry.metrics();
    expect(body).toContain('same_name_total{service="a"} 2');
    expect(body).not.toContain('service="b"');
    expect(body).not.toContain('process_cpu');
  });

  it('answers 404 off /metrics and 405 for other methods, and stops listening on close', async () => {
    const server = await start({ registry: createMetrics({ service: 'x', defaultMetrics: false }).registry, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metricsx`)).status).toBe(404);
    expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    await server.close();
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});
