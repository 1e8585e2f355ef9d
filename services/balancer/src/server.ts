import { balancerV1 } from '@mstar/contracts';
import { DEFAULT_MAX_DELIVER, type Consumer, type EventBus } from '@mstar/events';
import { loadProtoPackageDefinition, startGrpcServer, type RunningGrpcServer } from '@mstar/grpc';
import { createPolicyClient, type PolicyClient } from '@mstar/policy-inference';
import { createPrmClient, type PrmClient } from '@mstar/prm-scoring';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { createMetrics, type Logger, type Metrics } from '@mstar/telemetry';
import type { BalancerConfig } from './config.js';
import type { BalancerProgress } from './evaluation.js';
import { startConsumers } from './loop.js';
import { createBalancerMetrics } from './metrics.js';
import { createPublisher, runFinishedPayload } from './publish.js';
import { createBalancerService } from './service.js';
import { startRunTracker, type RunTracker } from './tracker.js';
import { createEventHub } from './watch.js';

export const SERVICE_NAME = 'balancer';
const BALANCER_PROTO = 'mstar/balancer/v1/balancer.proto';

export interface StartBalancerOptions {
  readonly config: BalancerConfig;
  readonly bus: EventBus;
  readonly runStore: RunStore;
  /** Where the balancer keeps its evaluation records (`runs/<run>/balancer/`). */
  readonly artifacts: ArtifactStore;
  /** Bound to the service name by the caller (main.ts creates it with `service: 'balancer'`). */
  readonly logger: Logger;
  /** Where the service registers its metrics; a private registry (not served) when omitted. */
  readonly metrics?: Metrics | undefined;
  /** The policy-inference client; one to POLICY_ADDRESS (closed by `close()`) when omitted. */
  readonly policyClient?: PolicyClient | undefined;
  /** The prm-scoring client; one to PRM_ADDRESS (closed by `close()`) when omitted. */
  readonly prmClient?: PrmClient | undefined;
  /** Progress of every evaluation (for progress bars); logs carry it every ~10 s regardless. */
  readonly onProgress?: ((event: BalancerProgress) => void) | undefined;
  /** How long a WatchRun stays open for RunFinished after the record ended; default 5 s. */
  readonly finishGraceMs?: number | undefined;
  /** Delivery attempts per event before the bus dead-letters it; default the bus's (5). */
  readonly maxDeliver?: number | undefined;
}

export interface RunningBalancer {
  readonly port: number;
  /** Ends open watches, aborts in-flight evaluations (their events are redelivered), drains calls, stops consumers. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the balancer: gRPC run control (health NOT_SERVING until the consumers are up), one
 * durable consumer per event kind over all runs (the loop's evaluations and stage tracking, and
 * the events WatchRun streams), and the run-record tracker that announces ended runs.
 */
export async function startBalancer(options: StartBalancerOptions): Promise<RunningBalancer> {
  const { config, logger, runStore, artifacts, bus } = options;
  const metrics = createBalancerMetrics(options.metrics ?? createMetrics({ service: SERVICE_NAME, defaultMetrics: false }));
  const policyClient = options.policyClient ?? createPolicyClient(config.POLICY_ADDRESS);
  const prmClient = options.prmClient ?? createPrmClient(config.PRM_ADDRESS);
  const closeOwnClients = (): void => {
    if (options.policyClient === undefined) policyClient.close();
    if (options.prmClient === undefined) prmClient.close();
  };
  const publish = createPublisher(bus);
  const hub = createEventHub();
  const stopping = new AbortController();

  let server: RunningGrpcServer | undefined;
  let tracker: RunTracker | undefined;
  let consumers: Consumer[] = [];
  const stop = async (reason: string): Promise<void> => {
    stopping.abort(new Error(`the balancer is stopping (${reason})`));
    await server?.shutdown(reason);
    await Promise.all(consumers.map((c) => c.close()));
    await tracker?.close();
    closeOwnClients();
  };
  try {
    server = await startGrpcServer({
      services: [
        {
          definition: balancerV1.BalancerServiceService,
          implementation: createBalancerService({ runStore, artifacts, publish, hub, finishGraceMs: options.finishGraceMs ?? 5_000, closing: stopping.signal }),
        },
      ],
      port: config.GRPC_PORT,
      logger,
      shutdownGraceMs: config.SHUTDOWN_GRACE,
      reflection: loadProtoPackageDefinition([BALANCER_PROTO], { includeDirs: [config.PROTO_DIR] }),
      metrics: options.metrics,
    });
    tracker = await startRunTracker({
      runStore,
      logger,
      onCounts: (counts) => metrics.runsByState(counts),
      onFailed: (run) => publish(run.runId, runFinishedPayload(run)),
    });
    consumers = await startConsumers({
      runStore,
      artifacts,
      policyClient,
      prmClient,
      publish,
      logger,
      metrics,
      bus,
      hub,
      versionWaitMs: config.VERSION_WAIT,
      promptsPerCall: config.PROMPTS_PER_CALL,
      scoreConcurrency: config.SCORE_CONCURRENCY,
      onProgress: options.onProgress,
      shutdown: stopping.signal,
      maxDeliver: options.maxDeliver ?? DEFAULT_MAX_DELIVER,
      onReject: (rejection) => {
        metrics.rejected(rejection.reason);
        logger.error({ durable: rejection.durable, subject: rejection.subject, reason: rejection.reason }, 'event rejected');
      },
    });
  } catch (error) {
    await stop('startup failed');
    throw error;
  }
  server.setReady(true);
  const { port } = server;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= stop('close');
      return closing;
    },
  };
}
