import { EVENT_STREAM, EVENT_STREAM_SUBJECTS } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { createFsArtifactStore, createNatsRunStore, type ArtifactStore, type RunStore } from '@mstar/stores';
import { createLogger, createMetrics, startMetricsServer, type Logger, type Metrics } from '@mstar/telemetry';

/** The settings every service's config has (see each service's config.ts). */
export interface BaseServiceConfig {
  readonly LOG_LEVEL: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly METRICS_PORT: number;
  readonly ARTIFACT_DIR: string;
  readonly NATS_URL?: string | undefined;
  readonly RUN_BUCKET?: string;
}

/** What a service's start function receives from its process entry point. */
export interface ServiceResources {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly artifacts: ArtifactStore;
  /** JetStream at NATS_URL; undefined when NATS_URL is unset and the service allows that. */
  readonly bus: EventBus | undefined;
  /** The NATS KV run store (bucket RUN_BUCKET), for services that ask for it. */
  readonly runStore: RunStore | undefined;
}

export interface ServiceMainOptions<C extends BaseServiceConfig, S> {
  /** The service name: logs, metrics and NATS connection names carry it. */
  readonly name: string;
  readonly config: C;
  /**
   * Why the service cannot run without NATS_URL (the pipeline services: trainer, data-curation,
   * balancer); absent for services that run without events (the inference services).
   */
  readonly requiresNats?: string;
  /** Open the NATS KV run store (bucket RUN_BUCKET). */
  readonly runStore?: boolean;
  readonly start: (resources: ServiceResources) => Promise<S>;
}

/**
 * The process entry point every service shares: config already loaded, logger bound to the
 * service, metrics on METRICS_PORT, artifacts at ARTIFACT_DIR, JetStream and the run store when
 * NATS_URL is set; startup failures logged and exit 1; SIGTERM / SIGINT drain the service (its
 * `close`) then release everything, and a second signal exits at once.
 */
export async function runServiceMain<C extends BaseServiceConfig, S extends { readonly port: number; close(): Promise<void> }>(
  options: ServiceMainOptions<C, S>,
): Promise<void> {
  const { config, name } = options;
  const logger = createLogger({ service: name, level: config.LOG_LEVEL });
  if (options.requiresNats !== undefined && config.NATS_URL === undefined) {
    logger.fatal({}, `NATS_URL is not set: ${options.requiresNats}`);
    process.exit(1);
  }
  const metrics = createMetrics({ service: name });
  const opened: { close(): Promise<void> }[] = [];
  const release = async (): Promise<void> => {
    for (const resource of opened.reverse()) await resource.close();
  };
  let service: S;
  let metricsPort: number;
  try {
    const metricsServer = await startMetricsServer({ registry: metrics.registry, port: config.METRICS_PORT });
    opened.push(metricsServer);
    metricsPort = metricsServer.port;
    const artifacts = await createFsArtifactStore({ root: config.ARTIFACT_DIR });
    opened.push(artifacts);
    const nats = config.NATS_URL;
    const bus = nats === undefined ? undefined : await createJetStreamBus({ servers: nats, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] }, logger, name });
    if (bus !== undefined) opened.push(bus);
    const runStore = nats === undefined || options.runStore !== true ? undefined : await createNatsRunStore({ servers: nats, bucket: config.RUN_BUCKET ?? 'mstar-runs', name });
    if (runStore !== undefined) opened.push(runStore);
    service = await options.start({ logger, metrics, artifacts, bus, runStore });
  } catch (err) {
    logger.fatal({ err }, 'startup failed');
    await release().catch(() => undefined);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'draining');
    void (async () => {
      await service.close();
      await release();
      logger.info({}, 'stopped');
    })().catch((err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exitCode = 1;
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Announced only after the handlers are installed: a SIGTERM right after "listening" drains.
  logger.info({ port: service.port, metricsPort }, `${name} listening`);
}
