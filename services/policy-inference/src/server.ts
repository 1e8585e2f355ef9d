import { createModelRegistry, followCheckpoints, type ModelRegistry } from '@mstar/bootstrap';
import { commonV1, policyV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import type { Consumer, EventBus } from '@mstar/events';
import { loadProtoPackageDefinition, startGrpcServer } from '@mstar/grpc';
import type { ArtifactStoreLike } from '@mstar/models';
import { createSessionPool } from '@mstar/runtime';
import { createMetrics, type Logger, type Metrics } from '@mstar/telemetry';
import type { PolicyInferenceConfig } from './config.js';
import { createWaveRunner, type GenerationJob } from './engine.js';
import { createPolicyMetrics } from './metrics.js';
import { createPoolLoader, type LoadedPolicy, type PolicyLoader } from './policy-loader.js';
import { createScheduler } from './scheduler.js';
import { createPolicyService } from './service.js';

export const SERVICE_NAME = 'policy-inference';
const POLICY_PROTO = 'mstar/policy/v1/policy.proto';

export interface StartPolicyInferenceOptions {
  readonly config: PolicyInferenceConfig;
  /** Without a bus the replica serves INITIAL_CHECKPOINT only (or nothing until `registry.load`). */
  readonly bus?: EventBus | undefined;
  readonly artifacts: ArtifactStoreLike;
  /** Bound to the service name by the caller (main.ts creates it with `service: 'policy-inference'`). */
  readonly logger: Logger;
  /** Where the service registers its metrics; a private registry (not served) when omitted. */
  readonly metrics?: Metrics | undefined;
  /** Wraps the pool loader (tests count graph runs through it); the pool loader itself when omitted. */
  readonly wrapLoader?: ((loader: PolicyLoader) => PolicyLoader) | undefined;
}

export interface RunningPolicyInference {
  readonly port: number;
  /** Resolves once the first policy is loaded (health SERVING from then on). */
  readonly ready: Promise<void>;
  readonly registry: ModelRegistry<LoadedPolicy>;
  /** Drains in-flight calls, then stops the server, the event consumer and the workers. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the policy inference service: worker pool, model registry, wave scheduler, gRPC server
 * (health NOT_SERVING until a policy is loaded, reflection from the proto files), and with a bus
 * the CheckpointPublished(POLICY) consumer of `RUN_ID`.
 */
export async function startPolicyInference(options: StartPolicyInferenceOptions): Promise<RunningPolicyInference> {
  const { config } = options;
  const { logger } = options;
  if (options.bus !== undefined && config.RUN_ID === undefined) {
    throw new InvalidArgumentError('RUN_ID must be set when an event bus is given: the replica follows the checkpoints of one run', { field: 'RUN_ID' });
  }
  const metrics = createPolicyMetrics(options.metrics ?? createMetrics({ service: SERVICE_NAME, defaultMetrics: false }));
  const pool = createSessionPool({ workers: config.WORKERS, device: config.DEVICE, intraOpThreads: config.INTRA_OP_THREADS, logger });

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let setServing: (serving: boolean) => void = () => undefined;
  const registry = createModelRegistry<LoadedPolicy>({
    label: 'policy',
    loader: (options.wrapLoader ?? ((l: PolicyLoader): PolicyLoader => l))(createPoolLoader({ store: options.artifacts, pool })),
    retain: config.RETAINED_VERSIONS,
    logger,
    onChange: () => {
      const current = registry.current();
      if (current === undefined) return;
      metrics.loadedVersion(current.ref.version);
      setServing(true);
      markReady();
    },
  });
  const scheduler = createScheduler<GenerationJob>({
    maxQueue: config.MAX_QUEUE,
    maxWaveRows: config.MAX_WAVE_ROWS,
    concurrency: config.WORKERS,
    runWave: createWaveRunner({ metrics, logger }),
    onQueueDepth: (depth) => metrics.queueDepth(depth),
  });
  const implementation = createPolicyService({
    registry,
    scheduler,
    metrics,
    runId: config.RUN_ID,
    limits: {
      maxPrompts: config.MAX_PROMPTS,
      maxSamples: config.MAX_SAMPLES,
      maxImageBytes: config.MAX_IMAGE_BYTES,
      maxQuestionChars: config.MAX_QUESTION_CHARS,
    },
  });

  const stopWork = async (): Promise<void> => {
    await scheduler.close();
    await registry.close();
    await pool.close();
  };

  let server;
  try {
    server = await startGrpcServer({
      services: [{ definition: policyV1.PolicyInferenceServiceService, implementation }],
      port: config.GRPC_PORT,
      logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE,
      reflection: loadProtoPackageDefinition([POLICY_PROTO], { includeDirs: [config.PROTO_DIR] }),
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
        kind: commonV1.CheckpointKind.POLICY,
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
