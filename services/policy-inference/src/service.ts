import type { ModelRegistry } from '@mstar/bootstrap';
import { commonV1, type policyV1 } from '@mstar/contracts';
import { serverStream, unary } from '@mstar/grpc';
import { modelSummary } from '@mstar/recipes';
import { waveKey, type GenerationJob } from './engine.js';
import type { LoadedPolicy } from './policy-loader.js';
import type { PolicyMetrics } from './metrics.js';
import type { Scheduler } from './scheduler.js';
import {
  checkGenerateRequest,
  checkGreedyRequest,
  pinnedVersion,
  preparePrompts,
  type RequestLimits,
  type SamplingSettings,
} from './validation.js';

export interface PolicyServiceDeps {
  readonly registry: ModelRegistry<LoadedPolicy>;
  readonly scheduler: Scheduler<GenerationJob>;
  readonly limits: RequestLimits;
  /** The run this replica serves; pins naming another run are NOT_FOUND. Unset: any. */
  readonly runId?: string | undefined;
  readonly metrics?: PolicyMetrics | undefined;
  /** Monotonic milliseconds, for latency metrics. */
  readonly now?: () => number;
}

/**
 * Validates, resolves the policy version, and runs the request through the scheduler, calling
 * `onCompletion` for each finished sequence. The version stays leased until the work is done, so
 * a hot reload cannot unload it underneath.
 */
async function runRequest(
  deps: PolicyServiceDeps,
  prompts: readonly commonV1.Prompt[],
  settings: SamplingSettings,
  policyRef: commonV1.CheckpointRef | undefined,
  signal: AbortSignal,
  onCompletion: (c: policyV1.Completion) => void,
): Promise<void> {
  const lease = deps.registry.acquire(pinnedVersion(policyRef, deps.runId));
  try {
    const prepared = await preparePrompts(prompts, lease.model, settings);
    await deps.scheduler.submit({
      key: waveKey(lease.model, settings),
      rows: prompts.length * settings.numSamples,
      signal,
      policy: lease.model,
      prompts: prepared,
      promptIds: prompts.map((p) => p.promptId),
      settings,
      onCompletion,
    });
  } finally {
    lease.release();
  }
}

/** The gRPC handlers of `mstar.policy.v1.PolicyInferenceService`. */
export function createPolicyService(deps: PolicyServiceDeps): policyV1.PolicyInferenceServiceServer {
  const now = deps.now ?? ((): number => performance.now());
  const timed = async <T>(method: string, work: () => Promise<T>): Promise<T> => {
    const started = now();
    const result = await work();
    deps.metrics?.request(method, (now() - started) / 1000);
    return result;
  };
  return {
    generate: serverStream((req, call, signal) =>
      timed('Generate', () =>
        runRequest(deps, req.prompts, checkGenerateRequest(req, deps.limits), req.policy, signal, (completion) => {
          call.write({ completion });
        }),
      ),
    ),
    generateGreedy: unary((req, _call, signal) =>
      timed('GenerateGreedy', async () => {
        const completions: policyV1.Completion[] = [];
        await runRequest(deps, req.prompts, checkGreedyRequest(req, deps.limits), req.policy, signal, (c) => {
          completions[c.promptIndex] = c;
        });
        return { completions };
      }),
    ),
    getModelInfo: unary(() => {
      const lease = deps.registry.acquire();
      try {
        const policy = lease.model;
        return Promise.resolve({
          policy: { runId: policy.ref.runId, kind: commonV1.CheckpointKind.POLICY, version: policy.ref.version },
          model: modelSummary(policy.config, 'policy'),
          executionProvider: policy.executionProvider,
          loadedAt: policy.loadedAt,
        });
      } finally {
        lease.release();
      }
    }),
  };
}
