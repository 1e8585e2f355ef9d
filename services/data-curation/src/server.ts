import { curationV1, type eventsV1, eventSubjectFilter } from '@mstar/contracts';
import { type Consumer, DEFAULT_MAX_DELIVER, type EventBus } from '@mstar/events';
import { loadProtoPackageDefinition, startGrpcServer } from '@mstar/grpc';
import { createPolicyClient } from '@mstar/policy-inference';
import { createPrmClient } from '@mstar/prm-scoring';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { createMetrics, type Logger, type Metrics } from '@mstar/telemetry';
import { createWorldTokenizer } from '@mstar/world';
import { SERVICE_NAME, type DataCurationConfig } from './config.js';
import type { PrmApi } from './dataset.js';
import { createCurationMetrics } from './metrics.js';
import { createPoolCache } from './pool.js';
import type { CurationProgress } from './progress.js';
import type { PolicyApi } from './sampling.js';
import { createCurationService } from './service.js';
import { createCurationWorker, decodeCurationEvent, type CurationEventKind } from './worker.js';

const CURATION_PROTO = 'mstar/curation/v1/curation.proto';
/** One durable consumer per event kind: nats-server 2.9 takes one subject filter per consumer. */
const CONSUMED: readonly { kind: CurationEventKind; durable: string }[] = [
  { kind: 'checkpointPublished', durable: `${SERVICE_NAME}-checkpoint-published` },
  { kind: 'temperatureSelected', durable: `${SERVICE_NAME}-temperature-selected` },
];

export interface StartDataCurationOptions {
  readonly config: DataCurationConfig;
  readonly bus: EventBus;
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  /** Bound to the service name by the caller (main.ts creates it with `service: 'data-curation'`). */
  readonly logger: Logger;
  /** Where the service registers its metrics; a private registry (not served) when omitted. */
  readonly metrics?: Metrics | undefined;
  /** A ready policy-inference client (the in-process launcher's); one to POLICY_ADDRESS when omitted. */
  readonly policy?: PolicyApi | undefined;
  /** A ready prm-scoring client; one to PRM_ADDRESS when omitted. */
  readonly prm?: PrmApi | undefined;
  /** Hears every progress step of the PRM-data and dataset stages (the launcher's progress bars). */
  readonly onProgress?: ((event: CurationProgress) => void) | undefined;
}

export interface RunningDataCuration {
  readonly port: number;
  /**
   * Stops taking events, aborts in-flight stage work (its event is redelivered to the next
   * instance, which redoes the stage deterministically), drains gRPC calls, closes the clients it
   * created. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts data curation: the gRPC DataCurationService (health NOT_SERVING until the consumers are
 * up), and the CheckpointPublished (PRM data from policy v0) and TemperatureSelected (iteration
 * datasets) consumers over all runs.
 */
export async function startDataCuration(options: StartDataCurationOptions): Promise<RunningDataCuration> {
  const { config, logger } = options;
  const metrics = createCurationMetrics(options.metrics ?? createMetrics({ service: SERVICE_NAME, defaultMetrics: false }));
  const ownedPolicy = options.policy === undefined ? createPolicyClient(config.POLICY_ADDRESS) : undefined;
  const ownedPrm = options.prm === undefined ? createPrmClient(config.PRM_ADDRESS) : undefined;
  const closeClients = (): void => {
    ownedPolicy?.close();
    ownedPrm?.close();
  };
  const stopping = new AbortController();
  const handle = createCurationWorker({
    policy: options.policy ?? (ownedPolicy as PolicyApi),
    prm: options.prm ?? (ownedPrm as PrmApi),
    bus: options.bus,
    runStore: options.runStore,
    artifacts: options.artifacts,
    logger,
    metrics,
    pool: createPoolCache(),
    tokenizer: createWorldTokenizer(),
    promptsPerCall: config.PROMPTS_PER_CALL,
    versionWaitMs: config.VERSION_WAIT,
    maxDeliver: DEFAULT_MAX_DELIVER,
    stopping: stopping.signal,
    onProgress: options.onProgress,
  });

  let server;
  try {
    server = await startGrpcServer({
      services: [{ definition: curationV1.DataCurationServiceService, implementation: createCurationService(options) }],
      port: config.GRPC_PORT,
      logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE,
      reflection: loadProtoPackageDefinition([CURATION_PROTO], { includeDirs: [config.PROTO_DIR] }),
      metrics: options.metrics,
    });
  } catch (err) {
    closeClients();
    throw err;
  }
  const grpcServer = server;

  const consumers: Consumer[] = [];
  const closeConsumers = async (): Promise<void> => {
    await Promise.all(consumers.map((c) => c.close()));
  };
  try {
    for (const { kind, durable } of CONSUMED) {
      consumers.push(
        await options.bus.consume<eventsV1.Event>({
          durable,
          subjects: eventSubjectFilter({ kind }),
          decode: (data) => decodeCurationEvent(kind, data),
          handler: handle,
          maxDeliver: DEFAULT_MAX_DELIVER,
          onReject: (rejection) => {
            metrics.rejected(rejection.reason);
            logger.warn({ durable, reason: rejection.reason, subject: rejection.subject, sequence: rejection.sequence, err: rejection.error }, 'event rejected');
          },
        }),
      );
    }
  } catch (err) {
    stopping.abort();
    await closeConsumers();
    await grpcServer.shutdown('startup failed');
    closeClients();
    throw err;
  }
  grpcServer.setReady(true);

  let closing: Promise<void> | undefined;
  return {
    port: grpcServer.port,
    close() {
      closing ??= (async () => {
        stopping.abort(new Error('data-curation is stopping'));
        await closeConsumers();
        await grpcServer.shutdown('close');
        closeClients();
      })();
      return closing;
    },
  };
}
