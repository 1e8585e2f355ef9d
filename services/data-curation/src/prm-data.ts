import type { commonV1 } from '@mstar/contracts';
import { extractAnswer, splitSteps, STEP_SEPARATOR } from '@mstar/cot';
import { deriveSeed } from '@mstar/metrics';
import { isCorrect, type EvalItem, type PrmTrajectory } from '@mstar/recipes';
import type { ResolvedRunSpec } from '@mstar/runspec';
import type { TextTokenizer } from '@mstar/world';
import { promptOf } from './pool.js';
import { CALLS_IN_FLIGHT, chunks, mapInOrder, sample, type PolicyApi, type SampleSettings } from './sampling.js';


/** The outcome of the Monte-Carlo labelling of one run's PRM prompts. */
export interface PrmDataResult {
  /** Labelled samples, in pool order then sample index. */
  readonly trajectories: PrmTrajectory[];
  readonly prompts: number;
  /** Samples drawn (prompts x samples_per_prompt). */
  readonly samples: number;
  /** Samples whose own final answer was correct (dropped ones excluded). */
  readonly correctSamples: number;
  /** Samples without a step or a final answer: not labelled. */
  readonly droppedSamples: number;
  /** Step labels written, over all trajectories (the last step's included). */
  readonly labelledSteps: number;
  /** Continuations sampled for the labels. */
  readonly rollouts: number;
  /** Mean of all step labels; 0 when there is none. */
  readonly meanStepLabel: number;
}

export interface BuildPrmDataOptions {
  readonly policy: PolicyApi;
  /** Counts the tokens of a response prefix, to leave the rollout what the sample had left. */
  readonly tokenizer: Pick<TextTokenizer, 'encode'>;
  readonly spec: ResolvedRunSpec;
  /** The warm-up policy (v0), pinned on every call. */
  readonly source: commonV1.CheckpointRef;
  /** The PRM prompts: the last `prm.prompts` of the pool, in pool order. */
  readonly items: readonly EvalItem[];
  readonly promptsPerCall: number;
  readonly signal: AbortSignal;
  /** Prompts finished so far, after each chunk. */
  readonly onProgress?: (done: number) => void;
}

interface LabelledSample {
  readonly item: EvalItem;
  readonly text: string;
  readonly steps: readonly string[];
  readonly correct: boolean;
}

/** The prefix a rollout for step j (1-based) continues: the first j steps, each followed by the separator. */
export function stepPrefix(steps: readonly string[], j: number): string {
  return steps.slice(0, j).join(STEP_SEPARATOR) + STEP_SEPARATOR;
}

/** Rollout budgets are multiples of this many tokens, so that prefixes of similar length share calls. */
export const ROLLOUT_BUDGET_STEP = 8;

/**
 * The max_new_tokens of a rollout: a rollout finishes the same response, so it gets what the
 * sample had left after the prefix, rounded down to a multiple of ROLLOUT_BUDGET_STEP (the server
 * takes one budget per call, and exact budgets would split the rollouts into many small calls);
 * never below 1. It depends on the prefix only, never on how requests are grouped.
 */
export function rolloutBudget(maxNewTokens: number, prefixTokens: number): number {
  const left = maxNewTokens - prefixTokens;
  if (left <= ROLLOUT_BUDGET_STEP) return Math.max(1, left);
  return Math.floor(left / ROLLOUT_BUDGET_STEP) * ROLLOUT_BUDGET_STEP;
}

/**
 * Monte-Carlo step labels (docs/loop.md, PRM data): `samples_per_prompt` samples per prompt at
 * T = 1.0 from the warm-up policy; for a sample of n steps, the label of step j < n is the share
 * of `rollouts_per_step` continuations of its first j steps whose full text reaches the gold
 * answer, and the label of step n is the sample's own correctness. Samples without a step or
 * without `# Answer` are dropped. Every call uses the seed deriveSeed(seed, 'prm-data') and the
 * server names each random stream by (seed, prompt, prefix, sample index), so the result does not
 * depend on how prompts are grouped into calls. Identical prefixes of one prompt (two samples
 * that start alike) are rolled out once: the server would return the same continuations twice.
 */
export async function buildPrmData(options: BuildPrmDataOptions): Promise<PrmDataResult> {
  const { spec, signal, promptsPerCall } = options;
  const base: Omit<SampleSettings, 'numSamples' | 'maxNewTokens'> = {
    temperature: 1,
    topP: spec.topP,
    seed: deriveSeed(spec.seed, 'prm-data'),
    policy: options.source,
  };
  const rolloutsPerStep = spec.prm.rolloutsPerStep;
  let done = 0;
  options.onProgress?.(0);
  const parts = await mapInOrder(chunks(options.items, promptsPerCall), CALLS_IN_FLIGHT, async (chunk) => {
    const drawn = await sample(options.policy, chunk.map((item) => promptOf(item)), { ...base, numSamples: spec.prm.samplesPerPrompt, maxNewTokens: spec.maxNewTokens }, signal);
    const labelled: LabelledSample[] = [];
    let dropped = 0;
    chunk.forEach((item, p) => {
      for (const completion of drawn[p] ?? []) {
        const steps = splitSteps(completion.text);
        if (steps.length === 0 || extractAnswer(completion.text) === null) dropped++;
        else labelled.push({ item, text: completion.text, steps, correct: isCorrect(item, completion.text) });
      }
    });

    // One rollout request per distinct (prompt, prefix); the map keeps first-seen order.
    const requests = new Map<string, { item: EvalItem; prefix: string }>();
    const keyOf = (item: EvalItem, prefix: string): string => `${item.id}\u0000${prefix}`;
    for (const s of labelled) {
      for (let j = 1; j < s.steps.length; j++) {
        const prefix = stepPrefix(s.steps, j);
        requests.set(keyOf(s.item, prefix), { item: s.item, prefix });
      }
    }
    const byBudget = new Map<number, { item: EvalItem; prefix: string }[]>();
    for (const r of requests.values()) {
      const budget = rolloutBudget(spec.maxNewTokens, options.tokenizer.encode(r.prefix).length);
      const same = byBudget.get(budget);
      if (same === undefined) byBudget.set(budget, [r]);
      else same.push(r);
    }
    const labels = new Map<string, number>();
    for (const [maxNewTokens, same] of byBudget) {
      for (const group of chunks(same, promptsPerCall)) {
        const continuations = await sample(
          options.policy,
          group.map((r) => promptOf(r.item, r.prefix)),
          { ...base, numSamples: rolloutsPerStep, maxNewTokens },
          signal,
        );
        group.forEach((r, i) => {
          const reached = (continuations[i] ?? []).filter((c) => isCorrect(r.item, r.prefix + c.text)).length;
          labels.set(keyOf(r.item, r.prefix), reached / rolloutsPerStep);
        });
      }
    }

    const trajectories = labelled.map((s): PrmTrajectory => {
      const stepLabels = s.steps.slice(0, -1).map((_, j) => labels.get(keyOf(s.item, stepPrefix(s.steps, j + 1))) as number);
      return { promptId: s.item.id, response: s.text, stepLabels: [...stepLabels, s.correct ? 1 : 0], correct: s.correct };
    });
    done += chunk.length;
    options.onProgress?.(done);
    return { trajectories, dropped, rollouts: requests.size * rolloutsPerStep };
  });

  const trajectories = parts.flatMap((p) => p.trajectories);
  const allLabels = trajectories.flatMap((t) => t.stepLabels);
  return {
    trajectories,
    prompts: options.items.length,
    samples: options.items.length * spec.prm.samplesPerPrompt,
    correctSamples: trajectories.filter((t) => t.correct).length,
    droppedSamples: parts.reduce((n, p) => n + p.dropped, 0),
    labelledSteps: allLabels.length,
    rollouts: parts.reduce((n, p) => n + p.rollouts, 0),
    meanStepLabel: allLabels.length === 0 ? 0 : allLabels.reduce((a, b) => a + b, 0) / allLabels.length,
  };
}
