import type { ModelRegistry } from '@mstar/bootstrap';
import { commonV1, type prmV1 } from '@mstar/contracts';
import { unary } from '@mstar/grpc';
import { aggregate } from '@mstar/metrics';
import { modelSummary } from '@mstar/recipes';
import type { Batcher } from './batcher.js';
import { checkScoreRequest, pinnedVersion, prepareRows, type RequestLimits, type ScoreRow } from './inputs.js';
import type { PrmMetrics } from './metrics.js';
import type { LoadedPrm } from './prm-model.js';

export interface PrmServiceDeps {
  readonly registry: ModelRegistry<LoadedPrm>;
  /** Batches rows of the same PRM version (the key) into graph runs; resolves with each row's step scores. */
  readonly batcher: Batcher<ScoreRow, readonly number[]>;
  readonly limits: RequestLimits;
  /** The run this replica serves; pins naming another run are NOT_FOUND. Unset: any. */
  readonly runId?: string | undefined;
  readonly metrics?: PrmMetrics | undefined;
  /** Monotonic milliseconds, for latency metrics. */
  readonly now?: () => number;
}

function prmRef(prm: LoadedPrm): commonV1.CheckpointRef {
  return { runId: prm.ref.runId, kind: commonV1.CheckpointKind.PRM, version: prm.ref.version };
}

/** The batcher's key: only rows of one loaded version can share a graph run. */
export function versionKey(prm: LoadedPrm): string {
  return `${prm.ref.runId}|${prm.ref.version}`;
}

/** The gRPC handlers of `mstar.prm.v1.PrmScoringService`. */
export function createPrmService(deps: PrmServiceDeps): prmV1.PrmScoringServiceServer {
  const now = deps.now ?? ((): number => performance.now());
  return {
    scoreSteps: unary(async (req, _call, signal) => {
      const started = now();
      const how = checkScoreRequest(req, deps.limits);
      // The lease keeps the version loaded until every batch holding this request's rows is done.
      const lease = deps.registry.acquire(pinnedVersion(req.prm, deps.runId));
      try {
        const prm = lease.model;
        const rows = await prepareRows(req, prm);
        // Longest first: when a request spans several batches, each holds rows of similar length,
        // so less of the graph's work is padding. Requests with equal lengths keep their order.
        const order = rows.map((_, i) => i).sort((a, b) => (rows[b] as ScoreRow).length - (rows[a] as ScoreRow).length);
        const scored = await deps.batcher.submit(
          versionKey(prm),
          order.map((i) => rows[i] as ScoreRow),
          signal,
        );
        const byTarget: (readonly number[])[] = [];
        order.forEach((target, k) => (byTarget[target] = scored[k] as readonly number[]));
        const scores = req.targets.map((t, i): prmV1.ResponseScore => {
          const steps = byTarget[i] as readonly number[];
          return {
            targetIndex: i,
            promptId: req.prompts[t.promptIndex]?.promptId ?? '',
            stepScores: [...steps],
            aggregateScore: aggregate(steps, how),
            stepCount: steps.length,
          };
        });
        deps.metrics?.request('ScoreSteps', (now() - started) / 1000, scores.length);
        return { scores, prm: prmRef(prm) };
      } finally {
        lease.release();
      }
    }),
    getModelInfo: unary(() => {
      const lease = deps.registry.acquire();
      try {
        const prm = lease.model;
        return Promise.resolve({ prm: prmRef(prm), model: modelSummary(prm.config, 'prm'), executionProvider: prm.executionProvider, loadedAt: prm.loadedAt });
      } finally {
        lease.release();
      }
    }),
  };
}
