import { trainerV1 } from '@mstar/contracts';
import type { ConsumerStats, EventBus } from '@mstar/events';
import { loadProtoPackageDefinition, startGrpcServer } from '@mstar/grpc';
import { createSessionPool } from '@mstar/runtime';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { createMetrics, type Logger, type Metrics } from '@mstar/telemetry';
import type { TrainerConfig } from './config.js';
import { startConsumers, type TrainerConsumers, type TrainerProgress } from './consumers.js';
import { createTrainerMetrics } from './metrics.js';
import { createTrainerService } from './service.js';
import { poolCache } from './stages.js';
import { createStatusBoard } from './status.js';

export const SERVICE_NAME = 'trainer';
const TRAINER_PROTO = 'mstar/trainer/v1/trainer.proto';
const PROGRESS_LOG_MS = 10_000;

export interface StartTrainerOptions {
  readonly config: TrainerConfig;
  /** RunStarted, PrmDataReady and DatasetReady come in here; CheckpointPublished goes out. */
  readonly bus: EventBus;
  /** Run records: specs, cancellation, and FAILED marks for bad input. */
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  /** Bound to the service name by the caller (main.ts creates it with `service: 'trainer'`). */
  readonly logger: Logger;
  /** Where the service registers its metrics; a private registry (not served) when omitted. */
  readonly metrics?: Metrics | undefined;
  /** Called after every optimizer step of every stage (progress bars). */
  readonly onProgress?: ((event: TrainerProgress) => void) | undefined;
}

export interface RunningTrainer {
  readonly port: number;
  /** The bus counters of each consumer, by durable name (`trainer-runStarted`, ...): deliveries, acks, rejections. */
  consumerStats(): Record<string, ConsumerStats>;
  /**
   * Stops taking events, lets the optimizer step in flight finish and abandons the rest of the
   * stage (its event goes back unacked and is redone from scratch after a restart), then stops
   * the gRPC server and the worker. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts the trainer: one ONNX Runtime worker for the training graphs (the event loop stays free
 * for gRPC and health), the gRPC server (health SERVING once the consumers are up, reflection from
 * the proto files), and the RunStarted / PrmDataReady / DatasetReady consumers of all runs.
 */
export async function startTrainer(options: StartTrainerOptions): Promise<RunningTrainer> {
  const { config, logger } = options;
  const metrics = createTrainerMetrics(options.metrics ?? createMetrics({ service: SERVICE_NAME, defaultMetrics: false }));
  const pool = createSessionPool({ workers: 1, device: config.DEVICE, intraOpThreads: config.INTRA_OP_THREADS, logger });
  const status = createStatusBoard();
  const shutdown = new AbortController();

  let server;
  try {
    server = await startGrpcServer({
      services: [{ definition: trainerV1.TrainerServiceService, implementation: createTrainerService({ artifacts: options.artifacts, runStore: options.runStore, status }) }],
      port: config.GRPC_PORT,
      logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE,
      reflection: loadProtoPackageDefinition([TRAINER_PROTO], { includeDirs: [config.PROTO_DIR] }),
      metrics: options.metrics,
    });
  } catch (err) {
    await pool.close();
    throw err;
  }
  const grpcServer = server;

  let consumers: TrainerConsumers;
  try {
    consumers = await startConsumers({
      service: SERVICE_NAME,
      bus: options.bus,
      runStore: options.runStore,
      artifacts: options.artifacts,
      runtime: { kind: 'pool', pool },
      pool: poolCache(),
      logger,
      metrics,
      status,
      shutdown: shutdown.signal,
      onProgress: options.onProgress,
      progressLogMs: PROGRESS_LOG_MS,
    });
  } catch (err) {
    await grpcServer.shutdown('startup failed');
    await pool.close();
    throw err;
  }
  grpcServer.setReady(true);

  let closing: Promise<void> | undefined;
  return {
    port: grpcServer.port,
    consumerStats: () => Object.fromEntries(consumers.consumers.map((c) => [c.durable, c.stats()])),
    close() {
      closing ??= (async () => {
        grpcServer.setReady(false);
        shutdown.abort(new Error('the trainer is stopping'));
        // Graceful: each consumer waits for its handler, which returns after the step in flight
        // and hands its event back for redelivery.
        await Promise.all(consumers.consumers.map((c) => c.close()));
        await consumers.idle();
        await grpcServer.shutdown('close');
        await pool.close();
      })();
      return closing;
    },
  };
}
