import { MetricsError } from './errors.js';

/** Anything carrying an aggregated PRM score. */
export interface Scored {
  readonly score: number;
}

/**
 * Items sorted by score, highest first; equal scores keep their input order (the earlier item
 * ranks higher). NaN scores are rejected rather than silently sorted somewhere.
 */
export function rankByScore<T extends Scored>(items: readonly T[]): T[] {
  for (const item of items) {
    if (Number.isNaN(item.score)) throw new MetricsError('cannot rank a sample whose score is NaN');
  }
  return items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => b.item.score - a.item.score || a.index - b.index)
    .map(({ item }) => item);
}
