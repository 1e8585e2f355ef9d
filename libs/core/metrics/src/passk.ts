import { MetricsError } from './errors.js';
import { rankByScore } from './rank.js';
import type { Scored } from './rank.js';

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function requirePrompts(perPrompt: readonly unknown[], what: string): void {
  if (perPrompt.length === 0) throw new MetricsError(`${what} needs at least one prompt`);
}

/** Greedy accuracy: the share of prompts whose single (temperature 0) answer is correct. */
export function greedyAccuracy(correct: readonly boolean[]): number {
  requirePrompts(correct, 'greedyAccuracy');
  return mean(correct.map((c) => (c ? 1 : 0)));
}

/**
 * Pass@K as the paper measures it: the share of prompts with at least one correct answer among
 * the K samples drawn for it (K = the length of each prompt's list).
 */
export function passAtK(correctPerPrompt: readonly (readonly boolean[])[]): number {
  requirePrompts(correctPerPrompt, 'passAtK');
  return mean(correctPerPrompt.map((flags) => (flags.some(Boolean) ? 1 : 0)));
}

/**
 * The unbiased pass@k estimator (Chen et al. 2021) from n samples of which c are correct:
 * 1 - C(n-c, k) / C(n, k), computed as a product to stay exact in floating point.
 */
export function passAtKUnbiased(n: number, c: number, k: number): number {
  if (![n, c, k].every(Number.isInteger) || n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw new MetricsError(`passAtKUnbiased needs integers 0 <= c <= n and 1 <= k <= n, got n=${n} c=${c} k=${k}`);
  }
  if (n - c < k) return 1;
  let missAll = 1;
  for (let i = n - c + 1; i <= n; i++) missAll *= 1 - k / i;
  return 1 - missAll;
}

/** The unbiased estimator averaged over prompts, each with its own n and c. */
export function meanPassAtKUnbiased(correctPerPrompt: readonly (readonly boolean[])[], k: number): number {
  requirePrompts(correctPerPrompt, 'meanPassAtKUnbiased');
  return mean(correctPerPrompt.map((flags) => passAtKUnbiased(flags.length, flags.filter(Boolean).length, k)));
}

/** A sample as Reward-Pass@k sees it: whether it is correct and its aggregated PRM score. */
export interface ScoredSample extends Scored {
  readonly correct: boolean;
}

/**
 * Reward-Pass@k: the share of prompts for which at least one of the k highest-scored samples,
 * ranked over ALL samples (no correctness filter), is correct. Ties in score are broken by
 * sample order (the earlier sample ranks higher), so the result never depends on sort internals.
 */
export function rewardPassAtK(samplesPerPrompt: readonly (readonly ScoredSample[])[], k: number): number {
  requirePrompts(samplesPerPrompt, 'rewardPassAtK');
  if (!Number.isInteger(k) || k < 1) throw new MetricsError(`rewardPassAtK needs an integer k >= 1, got ${k}`);
  return mean(samplesPerPrompt.map((samples) => (rankByScore(samples).slice(0, k).some((s) => s.correct) ? 1 : 0)));
}
