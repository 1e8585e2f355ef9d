import { CancelledError } from '@mstar/errors';
import { answersMatch, extractAnswer } from '@mstar/cot';
import { greedyAccuracy, passAtK, rewardPassAtK } from '@mstar/metrics';
import type { GenerationRunner } from '@mstar/generation';
import type { ModelConfig, ModelWeights } from '@mstar/models';
import type { Device } from '@mstar/runtime';
import type { TextTokenizer } from '@mstar/world';
import { RecipeConfigError } from './errors.js';
import type { EvalItem } from './items.js';
import { openPolicy, runnerSampler } from './policy.js';
import type { ResponseSampler, SampledResponse } from './policy.js';

/** Scores every response of one item (e.g. a PRM's min step score); higher is better. */
export type Scorer = (item: EvalItem, responses: readonly string[]) => Promise<readonly number[]>;

/** What to evaluate: weights (opened in this thread), a ready generation runner, or any response sampler. */
export type PolicySource =
  | { readonly config: ModelConfig; readonly weights: ModelWeights; readonly device?: Device; readonly intraOpThreads?: number }
  | { readonly config: ModelConfig; readonly runner: GenerationRunner }
  | { readonly sampler: ResponseSampler };

export interface EvalProgress {
  readonly phase: 'greedy' | 'sample';
  /** 0 for the greedy pass. */
  readonly temperature: number;
  readonly done: number;
  readonly total: number;
  readonly generatedTokens: number;
  readonly elapsedMs: number;
  /** Remaining time of this phase, extrapolated from its speed so far. */
  readonly etaMs: number;
}

export interface EvaluateOptions {
  readonly policy: PolicySource;
  readonly items: readonly EvalItem[];
  /** Needed unless the policy is a ready sampler. */
  readonly tokenizer?: TextTokenizer;
  /** Samples per prompt for Pass@K (default 16). */
  readonly k?: number;
  /** One or several sampling temperatures; they share the greedy pass (default 1.0). */
  readonly temperature?: number | readonly number[];
  /** Nucleus mass (default 1 = plain sampling, as the method samples). */
  readonly topP?: number;
  /** Default 48: the longest in-domain gold CoT is 37 tokens with its end token. */
  readonly maxNewTokens?: number;
  readonly seed?: number | string;
  /** Run the greedy pass (default true); a temperature sweep may skip it. */
  readonly greedy?: boolean;
  /** With a scorer, Reward-Pass@rewardK is reported (default k 2, the method's top-2). */
  readonly scorer?: Scorer;
  readonly rewardK?: number;
  /** Prompts per generation call when sampling (rows = this x k; default 8) and for greedy (default 64). */
  readonly promptsPerBatch?: number;
  readonly greedyPromptsPerBatch?: number;
  /** Keep every response in the result (default false). */
  readonly keepSamples?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: EvalProgress) => void;
}

export interface FamilyMetrics {
  n: number;
  greedyAccuracy?: number;
  passAtK?: number;
  rewardPassAtK?: number;
}

export interface GenerationCost {
  generatedTokens: number;
  /** Responses that hit maxNewTokens or the context limit. */
  truncated: number;
  seconds: number;
  tokensPerSecond: number;
}

export interface TemperatureResult {
  temperature: number;
  passAtK: number;
  rewardPassAtK?: number;
  /** Mean share of correct samples per prompt: the policy's accuracy at this temperature. */
  sampleAccuracy: number;
  perFamily: Record<string, FamilyMetrics>;
  cost: GenerationCost;
}

export interface SampleRecord {
  id: string;
  family: string;
  answer: string;
  greedy?: { text: string; correct: boolean };
  sampled: { temperature: number; responses: { text: string; correct: boolean; score?: number }[] }[];
}

/** JSON-able evaluation result; the top-level passAtK / temperature are those of the first temperature. */
export interface EvaluationResult {
  n: number;
  k: number;
  topP: number;
  maxNewTokens: number;
  seed: number | string;
  greedyAccuracy?: number;
  temperature?: number;
  passAtK?: number;
  rewardK?: number;
  rewardPassAtK?: number;
  temperatures: TemperatureResult[];
  perFamily: Record<string, FamilyMetrics>;
  greedyCost?: GenerationCost;
  samples?: SampleRecord[];
}

/** Whether a response's final answer matches the item's gold answer (exact match after normalisation). */
export function isCorrect(item: EvalItem, text: string): boolean {
  return answersMatch(extractAnswer(text), item.answer, item.choices !== undefined ? { choices: item.choices } : {});
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RecipeConfigError(`${field} must be an integer >= 1, got ${value}`, { field });
  return value;
}

/** Items grouped by family, in first-seen order. */
function familyIndex(items: readonly EvalItem[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  items.forEach((item, i) => {
    const list = out.get(item.family) ?? [];
    list.push(i);
    out.set(item.family, list);
  });
  return out;
}

async function runPhase(
  sampler: ResponseSampler,
  items: readonly EvalItem[],
  request: { temperature: number; numSamples: number; topP: number; maxNewTokens: number; seed: number | string },
  chunk: number,
  options: EvaluateOptions,
): Promise<{ responses: SampledResponse[][]; cost: GenerationCost }> {
  const started = performance.now();
  const responses: SampledResponse[][] = [];
  let generatedTokens = 0;
  for (let from = 0; from < items.length; from += chunk) {
    if (options.signal?.aborted === true) throw new CancelledError('evaluation was cancelled', { cause: options.signal.reason });
    const part = await sampler({ ...request, items: items.slice(from, from + chunk), signal: options.signal });
    for (const samples of part) {
      responses.push(samples);
      for (const s of samples) generatedTokens += s.tokens;
    }
    const elapsedMs = performance.now() - started;
    const done = responses.length;
    options.onProgress?.({
      phase: request.temperature === 0 ? 'greedy' : 'sample',
      temperature: request.temperature,
      done,
      total: items.length,
      generatedTokens,
      elapsedMs,
      etaMs: (elapsedMs / done) * (items.length - done),
    });
  }
  const seconds = (performance.now() - started) / 1000;
  const truncated = responses.reduce((n, samples) => n + samples.filter((s) => s.truncated).length, 0);
  return { responses, cost: { generatedTokens, truncated, seconds, tokensPerSecond: generatedTokens / Math.max(seconds, 1e-9) } };
}

function samplerOf(options: EvaluateOptions): { sampler: ResponseSampler; close: () => Promise<void> } {
  const { policy } = options;
  if ('sampler' in policy) return { sampler: policy.sampler, close: async () => {} };
  const tokenizer = options.tokenizer;
  if (tokenizer === undefined) throw new RecipeConfigError('a tokenizer is needed to evaluate a model (only a ready sampler goes without)', { field: 'tokenizer' });
  if ('runner' in policy) return { sampler: runnerSampler(policy.runner, policy.config, tokenizer), close: async () => {} };
  let opened: Awaited<ReturnType<typeof openPolicy>> | undefined;
  const sampler: ResponseSampler = async (request) => {
    opened ??= await openPolicy(policy.config, policy.weights, {
      ...(policy.device !== undefined ? { device: policy.device } : {}),
      ...(policy.intraOpThreads !== undefined ? { intraOpThreads: policy.intraOpThreads } : {}),
    });
    return runnerSampler(opened.runner, policy.config, tokenizer)(request);
  };
  return { sampler, close: async () => opened?.close() };
}

/**
 * Greedy accuracy, Pass@K and (with a scorer) Reward-Pass@k of a policy over items, at one or
 * several temperatures sharing one greedy pass. Pass@K is the share of prompts with at least one
 * correct answer among K samples; Reward-Pass@k ranks ALL K samples of a prompt by the scorer
 * (ties: the earlier sample) and asks whether one of the top k is correct.
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluationResult> {
  const { items } = options;
  if (items.length === 0) throw new RecipeConfigError('no items to evaluate', { field: 'items' });
  const k = positiveInt(options.k ?? 16, 'k');
  const temperatures = typeof options.temperature === 'number' ? [options.temperature] : (options.temperature ?? [1]);
  for (const t of temperatures) if (!(t > 0 && Number.isFinite(t))) throw new RecipeConfigError(`sampling temperatures must be finite and > 0 (greedy is separate), got ${t}`, { field: 'temperature' });
  const topP = options.topP ?? 1;
  const maxNewTokens = positiveInt(options.maxNewTokens ?? 48, 'maxNewTokens');
  const rewardK = positiveInt(options.rewardK ?? 2, 'rewardK');
  const seed = options.seed ?? 0;
  const chunk = positiveInt(options.promptsPerBatch ?? 8, 'promptsPerBatch');
  const greedyChunk = positiveInt(options.greedyPromptsPerBatch ?? 64, 'greedyPromptsPerBatch');
  const families = familyIndex(items);
  const perFamily: Record<string, FamilyMetrics> = {};
  for (const [family, idx] of families) perFamily[family] = { n: idx.length };
  const samples: SampleRecord[] | undefined = options.keepSamples === true ? items.map((item) => ({ id: item.id, family: item.family, answer: item.answer, sampled: [] })) : undefined;

  const { sampler, close } = samplerOf(options);
  try {
    const result: EvaluationResult = { n: items.length, k, topP, maxNewTokens, seed, temperatures: [], perFamily };
    if (options.greedy !== false) {
      const greedy = await runPhase(sampler, items, { temperature: 0, numSamples: 1, topP: 1, maxNewTokens, seed }, greedyChunk, options);
      const correct = greedy.responses.map((r, i) => isCorrect(items[i]!, r[0]!.text));
      result.greedyAccuracy = greedyAccuracy(correct);
      result.greedyCost = greedy.cost;
      for (const [family, idx] of families) perFamily[family]!.greedyAccuracy = greedyAccuracy(idx.map((i) => correct[i]!));
      samples?.forEach((s, i) => (s.greedy = { text: greedy.responses[i]![0]!.text, correct: correct[i]! }));
    }
    for (const temperature of temperatures) {
      const sampled = await runPhase(sampler, items, { temperature, numSamples: k, topP, maxNewTokens, seed }, chunk, options);
      const correct = sampled.responses.map((r, i) => r.map((s) => isCorrect(items[i]!, s.text)));
      const scores = options.scorer === undefined ? undefined : await Promise.all(items.map((item, i) => scoreItem(options.scorer!, item, sampled.responses[i]!)));
      const scoredOf = (i: number) => correct[i]!.map((c, j) => ({ correct: c, score: scores![i]![j]! }));
      const familyMetrics: Record<string, FamilyMetrics> = {};
      for (const [family, idx] of families) {
        familyMetrics[family] = { n: idx.length, passAtK: passAtK(idx.map((i) => correct[i]!)) };
        if (scores !== undefined) familyMetrics[family].rewardPassAtK = rewardPassAtK(idx.map(scoredOf), rewardK);
      }
      const entry: TemperatureResult = {
        temperature,
        passAtK: passAtK(correct),
        sampleAccuracy: correct.reduce((sum, c) => sum + c.filter(Boolean).length / c.length, 0) / items.length,
        perFamily: familyMetrics,
        cost: sampled.cost,
      };
      if (scores !== undefined) entry.rewardPassAtK = rewardPassAtK(items.map((_, i) => scoredOf(i)), rewardK);
      result.temperatures.push(entry);
      samples?.forEach((s, i) =>
        s.sampled.push({
          temperature,
          responses: sampled.responses[i]!.map((r, j) => ({ text: r.text, correct: correct[i]![j]!, ...(scores !== undefined ? { score: scores[i]![j]! } : {}) })),
        }),
      );
    }
    const first = result.temperatures[0];
    if (first !== undefined) {
      result.temperature = first.temperature;
      result.passAtK = first.passAtK;
      for (const [family, m] of Object.entries(first.perFamily)) {
        perFamily[family]!.passAtK = m.passAtK!;
        if (m.rewardPassAtK !== undefined) perFamily[family]!.rewardPassAtK = m.rewardPassAtK;
      }
      if (first.rewardPassAtK !== undefined) {
        result.rewardK = rewardK;
        result.rewardPassAtK = first.rewardPassAtK;
      }
    }
    if (samples !== undefined) result.samples = samples;
    return result;
  } finally {
    await close();
  }
}

async function scoreItem(scorer: Scorer, item: EvalItem, responses: readonly SampledResponse[]): Promise<readonly number[]> {
  const scores = await scorer(
    item,
    responses.map((r) => r.text),
  );
  // -Infinity is allowed: it ranks a response last (a PRM cannot score a response without steps).
  const bad = (s: number): boolean => Number.isNaN(s) || s === Number.POSITIVE_INFINITY;
  if (scores.length !== responses.length || scores.some(bad)) {
    throw new RecipeConfigError(`the scorer returned ${scores.length} scores (${scores.filter(bad).length} NaN or +Infinity) for ${responses.length} responses of item ${item.id}`, { field: 'scorer' });
  }
  return scores;
}
