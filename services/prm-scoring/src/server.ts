import { createModelRegistry, followCheckpoints, type ModelLoader, type ModelRegistry } from '@mstar/bootstrap';
import { commonV1, prmV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import type { Consumer, EventBus } from '@mstar/events';
import { loadProtoPackageDefinition, startGrpcServer } from '@mstar/grpc';
import type { ArtifactStoreLike } from '@mstar/models';
import { createSessionPool } from '@mstar/runtime';
import { createMetrics, type Logger, type Metrics } from '@mstar/telemetry';
import { createBatcher } from './batcher.js';
import type { PrmScoringConfig } from './config.js';
import type { ScoreRow } from './inputs.js';
import { createPrmMetrics } from './metrics.js';
import { createPoolLoader, type LoadedPrm } from './prm-model.js';
import { createBatchRunner } from './scoring.js';
import { createPrmService } from './service.js';

export const SERVICE_NAME = 'prm-scoring';
const PRM_PROTO = 'mstar/prm/v1/prm.proto';

export interface StartPrmScoringOptions {
  readonly config: PrmScoringConfig;
  /** Without a bus the replica serves INITIAL_CHECKPOINT only (or nothing until `registry.load`). */
  readonly bus?: EventBus | undefined;
  readonly artifacts: ArtifactStoreLike;
  /** Bound to the service name by the caller (main.ts creates it with `service: 'prm-scoring'`). */
  readonly logger: Logger;
  /** Where the service registers its metrics; a private registry (not served) when omitted. */
  readonly metrics?: Metrics | undefined;
  /** Wraps the pool loader (tests count graph runs through it); the pool loader itself when omitted. */
  readonly wrapLoader?: ((loader: ModelLoader<LoadedPrm>) => ModelLoader<LoadedPrm>) | undefined;
}

export interface RunningPrmScoring {
  readonly port: number;
  /** Resolves once the first PRM is loaded (health SERVING from then on). */
  readonly ready: Promise<void>;
  readonly registry: ModelRegistry<LoadedPrm>;
  /** Drains in-flight calls, then stops the server, the event consumer and the workers. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the PRM scoring service: worker pool, model registry, batcher, gRPC server (health
 * NOT_SERVING until a PRM is loaded, reflection from the proto files), and with a bus the
 * CheckpointPublished(PRM) consumer of `RUN_ID`.
 */
export async function startPrmScoring(options: StartPrmScoringOptions): Promise<RunningPrmScoring> {
  const { config, logger } = options;
  if (options.bus !== undefined && config.RUN_ID === undefined) {
    throw new InvalidArgumentError('RUN_ID must be set when an event bus is given: the replica follows the checkpoints of one run', { field: 'RUN_ID' });
  }
  const metrics = createPrmMetrics(options.metrics ?? createMetrics({ service: SERVICE_NAME, defaultMetrics: false }));
  const pool = createSessionPool({ workers: config.WORKERS, device: config.DEVICE, intraOpThreads: config.INTRA_OP_THREADS, logger });

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let setServing: (serving: boolean) => void = () => undefined;
  const loader = createPoolLoader({ store: options.artifacts, pool });
  const registry = createModelRegistry<LoadedPrm>({
    loader: options.wrapLoader?.(loader) ?? loader,
    retain: config.RETAINED_VERSIONS,
    logger,
    label: 'PRM',
    onChange: () => {
      const current = registry.current();
      if (current === undefined) return;
      metrics.loadedVersion(current.ref.version);
      setServing(true);
      markReady();
    },
  });
  const batcher = createBatcher<ScoreRow, readonly number[]>({
    maxQueue: config.MAX_QUEUE,
    maxBatch: config.MAX_BATCH_RESPONSES,
    concurrency: config.WORKERS,
    runBatch: createBatchRunner({ metrics, logger }),
    onQueueDepth: (depth) => metrics.queueDepth(depth),
  });
  const implementation = createPrmService({
    registry,
    batcher,
    metrics,
    runId: config.RUN_ID,
    limits: { maxTargets: config.MAX_TARGETS, maxImageBytes: config.MAX_IMAGE_BYTES, maxQuestionChars: config.MAX_QUESTION_CHARS },
  });

  const stopWork = async (): Promise<void> => {
    await batcher.close();
    await registry.close();
    await pool.close();
  };

  let server;
  try {
    server = await startGrpcServer({
      services: [{ definition: prmV1.PrmScoringServiceService, implementation }],
      port: config.GRPC_PORT,
      logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE,
      reflection: loadProtoPackageDefinition([PRM_PROTO], { includeDirs: [config.PROTO_DIR] }),
      metrics: options.metrics,
    });
  } catch (err) {
    await stopWork();
    throw err;
  }
  const grpcServer = server;
  setServing = (serving) => grpcServer.setReady(serving);

  let consumer: Consumer | undefined;
  const runId = config.RUN_ID ?? 'local';
  try {
    if (config.INITIAL_CHECKPOINT !== undefined) {
      await registry.load({ runId, version: config.INITIAL_VERSION }, config.INITIAL_CHECKPOINT);
    }
    if (options.bus !== undefined) {
      consumer = await followCheckpoints({
        bus: options.bus,
        runId,
        kind: commonV1.CheckpointKind.PRM,
        service: SERVICE_NAME,
        replicaId: config.REPLICA_ID,
        registry,
      });
    }
  } catch (err) {
    await grpcServer.shutdown('startup failed');
    await stopWork();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    port: grpcServer.port,
    ready,
    registry,
    close() {
      closing ??= (async () => {
        await grpcServer.shutdown('close');
        await consumer?.close();
        await stopWork();
      })();
      return closing;
    },
  };
}
