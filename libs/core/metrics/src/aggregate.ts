import { MetricsError } from './errors.js';

/** How per-step PRM scores become one response score. The paper uses `min`. */
export type Aggregation = 'min' | 'mean' | 'last' | 'product';

export const AGGREGATIONS: readonly Aggregation[] = ['min', 'mean', 'last', 'product'];

/** Aggregates a response's step scores. A response with no step has no score: that is an error. */
export function aggregate(scores: readonly number[], how: Aggregation): number {
  if (scores.length === 0) throw new MetricsError(`cannot aggregate an empty list of step scores (${how})`);
  for (const s of scores) {
    if (!Number.isFinite(s)) throw new MetricsError(`step scores must be finite numbers, got ${s}`);
  }
  switch (how) {
    case 'min':
      return Math.min(...scores);
    case 'mean':
      return scores.reduce((a, b) => a + b, 0) / scores.length;
    case 'last':
      return scores[scores.length - 1] as number;
    case 'product':
      return scores.reduce((a, b) => a * b, 1);
    default:
      throw new MetricsError(`unknown aggregation ${JSON.stringify(String(how))}; expected one of ${AGGREGATIONS.join(', ')}`);
  }
}
