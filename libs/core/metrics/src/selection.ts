import { MetricsError } from './errors.js';
import { rankByScore } from './rank.js';
import type { Scored } from './rank.js';
import type { Rng } from './rng.js';

/** A candidate for the training set: correct = its final answer matched the gold answer. */
export interface Candidate {
  readonly correct: boolean;
}

function requireK(k: number, rule: string): void {
  if (!Number.isInteger(k) || k < 1) throw new MetricsError(`${rule} needs an integer k >= 1, got ${k}`);
}

/** Every correct sample, in input order (the "all correct" rule of RFT / STaR). */
export function selectAllCorrect<T extends Candidate>(samples: readonly T[]): T[] {
  return samples.filter((s) => s.correct);
}

/** k correct samples drawn uniformly without replacement (the paper's random-2 ablation). */
export function selectRandomK<T extends Candidate>(samples: readonly T[], k: number, rng: Rng): T[] {
  requireK(k, 'selectRandomK');
  return rng.sample(selectAllCorrect(samples), k);
}

/**
 * The k correct samples with the highest aggregated PRM score (M-STAR uses k = 2). Ties keep
 * input order, as in rewardPassAtK.
 */
export function selectTopK<T extends Candidate & Scored>(samples: readonly T[], k: number): T[] {
  requireK(k, 'selectTopK');
  return rankByScore(selectAllCorrect(samples)).slice(0, k);
}

/** Correct samples whose aggregated PRM score is strictly above alpha, in input order. */
export function selectThreshold<T extends Candidate & Scored>(samples: readonly T[], alpha: number): T[] {
  if (!Number.isFinite(alpha)) throw new MetricsError(`selectThreshold needs a finite alpha, got ${alpha}`);
  return selectAllCorrect(samples).filter((s) => s.score > alpha);
}
