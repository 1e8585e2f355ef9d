import type { Scorer } from '@mstar/recipes';

/**
 * A scorer that keeps at most `limit` calls of `scorer` in flight. The evaluation harness scores
 * every prompt of a temperature at once (a validation set of 128 is 128 ScoreSteps calls), and
 * prm-scoring refuses requests beyond its queue with RESOURCE_EXHAUSTED; a few calls at a time
 * keep its batches full without overflowing it.
 */
export function limitConcurrency(scorer: Scorer, limit: number): Scorer {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (item, responses) => {
    if (active < limit) active++;
    // A finishing call hands its slot straight to the next waiter, so `active` stays the same.
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await scorer(item, responses);
    } finally {
      const next = waiting.shift();
      if (next === undefined) active--;
      else next();
    }
  };
}
