import { commonV1, policyV1 } from '@mstar/contracts';
import { generate, type GeneratedSequence, type GenerationPrompt } from '@mstar/generation';
import type { Logger } from '@mstar/telemetry';
import type { LoadedPolicy } from './policy-loader.js';
import type { PolicyMetrics } from './metrics.js';
import type { WaveJob } from './scheduler.js';
import type { SamplingSettings } from './validation.js';

/** One caller's request, ready to join a wave. */
export interface GenerationJob extends WaveJob {
  readonly policy: LoadedPolicy;
  readonly prompts: readonly GenerationPrompt[];
  /** The caller's prompt ids, echoed in completions. */
  readonly promptIds: readonly string[];
  readonly settings: SamplingSettings;
  /** Called once per finished sequence of this job, in completion order. */
  readonly onCompletion: (completion: policyV1.Completion) => void;
}

/** Jobs share a wave only when one `generate` call can serve them all. */
export function waveKey(policy: LoadedPolicy, s: SamplingSettings): string {
  return [policy.ref.runId, policy.ref.version, s.numSamples, s.temperature, s.topP, s.maxNewTokens].join('|');
}

function finishReason(seq: GeneratedSequence): policyV1.FinishReason {
  return seq.finishReason === 'eos' ? policyV1.FinishReason.EOS : policyV1.FinishReason.LENGTH;
}

/**
 * Runs a wave of compatible jobs as one batched `generate` call. The seed lives in each prompt's
 * id (see `preparePrompts`), so the call's own seed is fixed and a job's samples do not depend on
 * its wave.
 */
export function createWaveRunner(deps: { metrics?: PolicyMetrics; logger: Logger; now?: () => number }) {
  const now = deps.now ?? ((): number => performance.now());
  return async (jobs: readonly GenerationJob[], signal: AbortSignal): Promise<void> => {
    const first = jobs[0];
    if (first === undefined) return;
    const { policy, settings } = first;
    const owners: { job: GenerationJob; index: number }[] = [];
    for (const job of jobs) job.prompts.forEach((_, index) => owners.push({ job, index }));
    const started = now();
    const result = await generate(policy.runner, {
      prompts: jobs.flatMap((j) => j.prompts),
      numSamples: settings.numSamples,
      temperature: settings.temperature,
      topP: settings.topP,
      maxNewTokens: settings.maxNewTokens,
      seed: 0,
      eosId: policy.config.tokens.eos,
      padId: policy.config.tokens.pad,
      imageTokenId: policy.config.tokens.image,
      maxContext: policy.config.text.maxPositionEmbeddings,
      signal,
      onSequenceDone: (seq) => {
        const owner = owners[seq.promptIndex];
        if (owner === undefined || owner.job.signal.aborted) return;
        const completion: policyV1.Completion = {
          promptIndex: owner.index,
          promptId: owner.job.promptIds[owner.index] ?? '',
          sampleIndex: seq.sampleIndex,
          text: policy.tokenizer.decode(seq.tokens, { skipSpecialTokens: true }),
          tokenCount: seq.tokens.length + (seq.finishReason === 'eos' ? 1 : 0),
          finishReason: finishReason(seq),
          policy: { runId: policy.ref.runId, kind: commonV1.CheckpointKind.POLICY, version: policy.ref.version },
        };
        try {
          owner.job.onCompletion(completion);
        } catch (err) {
          // A caller whose stream broke must not fail the other callers of the wave.
          deps.logger.warn({ err }, 'completion could not be delivered');
        }
      },
    });
    const seconds = (now() - started) / 1000;
    const rows = jobs.reduce((n, j) => n + j.rows, 0);
    deps.metrics?.wave({ requests: jobs.length, rows, generatedTokens: result.stats.generatedTokens, seconds });
    deps.logger.debug({ requests: jobs.length, rows, tokens: result.stats.generatedTokens, seconds, version: policy.ref.version }, 'wave finished');
  };
}
