import type { Rng } from '@mstar/metrics';
import { InvalidArgumentError } from '@mstar/errors';
import { argmax, expShifted, processLogits, temperatureProcessor, topKProcessor, topPProcessor, type LogitsProcessor } from './logits.js';

export interface SamplingOptions {
  /** 0 = greedy (argmax, ties to the lowest id, no random draw); otherwise logits are divided by it. */
  temperature: number;
  /** Nucleus mass in (0, 1]; default 1 (off). */
  topP?: number;
  /** Keep only the k most likely tokens; default 0 (off). Applied before topP. */
  topK?: number;
}

/** Checks the options once and returns the processors `sample` would apply (none when greedy). */
export function samplingProcessors(options: SamplingOptions): readonly LogitsProcessor[] {
  const { temperature, topP = 1, topK = 0 } = options;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidArgumentError(`temperature must be a finite number >= 0, got ${temperature}`, { field: 'temperature' });
  }
  const filters = [topKProcessor(topK), topPProcessor(topP)];
  return temperature === 0 ? [] : [temperatureProcessor(temperature), ...filters];
}

/**
 * Draws one token id from the probabilities of the logits (inverse CDF in ascending id order, one
 * `rng.float()` per draw). Masked (-Infinity) tokens are never drawn.
 */
export function drawToken(logits: ArrayLike<number>, rng: Rng): number {
  const { weights, total } = expShifted(logits);
  // u * total against unnormalised cumulative weights: the same inverse CDF without dividing each weight.
  const target = rng.float() * total;
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i] as number;
    if (w === 0) continue;
    cumulative += w;
    last = i;
    if (target < cumulative) return i;
  }
  // The weights sum to `total` only within rounding: a target above the running sum takes the last
  // token that had any weight.
  return last;
}

/**
 * One token from a row of logits: greedy at temperature 0, else temperature, top-k and top-p
 * filtering and a draw from `rng`. Pure apart from advancing `rng`.
 */
export function sample(logitsRow: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  return sampleWith(logitsRow, options.temperature === 0, samplingProcessors(options), rng);
}

/** `sample` with the processors already built (the decoding loop builds them once per request). */
export function sampleWith(logitsRow: ArrayLike<number>, greedy: boolean, processors: readonly LogitsProcessor[], rng: Rng): number {
  if (greedy) return argmax(logitsRow);
  return drawToken(processLogits(logitsRow, processors), rng);
}
