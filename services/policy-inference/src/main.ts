import { EVENT_STREAM, EVENT_STREAM_SUBJECTS } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { createFsArtifactStore } from '@mstar/stores';
import { createLogger, createMetrics, startMetricsServer } from '@mstar/telemetry';
import { loadConfig } from './config.js';
import { SERVICE_NAME, startPolicyInference, type RunningPolicyInference } from './server.js';

// Entry point of one replica: config from the environment, metrics on METRICS_PORT, events over
// JetStream when NATS_URL is set, SIGTERM / SIGINT drain in-flight calls and then stop.
const config = loadConfig();
const logger = createLogger({ service: SERVICE_NAME, level: config.LOG_LEVEL });
const metrics = createMetrics({ service: SERVICE_NAME });
const metricsServer = await startMetricsServer({ registry: metrics.registry, port: config.METRICS_PORT });
const artifacts = await createFsArtifactStore({ root: config.ARTIFACT_DIR });
let bus: EventBus | undefined;
let service: RunningPolicyInference;
try {
  bus =
    config.NATS_URL === undefined
      ? undefined
      : await createJetStreamBus({ servers: config.NATS_URL, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] }, logger });
  service = await startPolicyInference({ config, bus, artifacts, logger, metrics });
} catch (err) {
  logger.fatal({ err }, 'startup failed');
  await bus?.close();
  await artifacts.close();
  await metricsServer.close();
  process.exit(1);
}
logger.info({ port: service.port, metricsPort: metricsServer.port }, 'policy inference listening');

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
    await bus?.close();
    await artifacts.close();
    await metricsServer.close();
    logger.info({}, 'stopped');
  })().catch((err: unknown) => {
    logger.error({ err }, 'shutdown failed');
    process.exitCode = 1;
  });
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
