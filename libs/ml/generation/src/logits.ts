import { InvalidArgumentError } from '@mstar/errors';
import { NonFiniteLogitsError } from './errors.js';

/**
 * A step of the logits pipeline. It receives float64 logits for one row and returns them (in place
 * or new); a token it rules out gets -Infinity, so later steps and the final softmax ignore it.
 */
export type LogitsProcessor = (logits: Float64Array) => Float64Array;

/** Copies a row to float64, rejecting NaN and +Infinity (-Infinity means "masked" and is kept). */
export function toFloat64Logits(row: ArrayLike<number>): Float64Array {
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) {
    const v = row[i] as number;
    if (Number.isNaN(v) || v === Infinity) throw new NonFiniteLogitsError(i, v);
    out[i] = v;
  }
  return out;
}

/** Index of the largest logit; ties go to the lowest id. Throws on an empty or all-masked row. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (Number.isNaN(v) || v === Infinity) throw new NonFiniteLogitsError(i, v);
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  if (best < 0) throw new InvalidArgumentError('argmax needs at least one logit above -Infinity', { field: 'logits' });
  return best;
}

/**
 * exp(logit - max) for every token (float64), and their sum. Subtracting the max keeps large
 * logits from overflowing; masked (-Infinity) tokens get exactly 0.
 */
export function expShifted(logits: ArrayLike<number>): { weights: Float64Array; total: number } {
  const max = logits[argmax(logits)] as number;
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    weights[i] = e;
    total += e;
  }
  return { weights, total };
}

/** softmax in float64 (max subtracted), so the probabilities sum to 1 within float64 rounding at any scale. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const { weights, total } = expShifted(logits);
  for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) / total;
  return weights;
}

function checkTemperature(t: number): void {
  if (!Number.isFinite(t) || t <= 0) throw new InvalidArgumentError(`temperature must be a finite number > 0 here, got ${t}`, { field: 'temperature' });
}

/** Divides by the temperature (> 0; greedy decoding at T = 0 is the sampler's job, not a division). */
export function temperatureProcessor(temperature: number): LogitsProcessor {
  checkTemperature(temperature);
  return (logits) => {
    if (temperature !== 1) for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] as number) / temperature;
    return logits;
  };
}

/**
 * Masks all but the `count` highest `scores` in `logits`, ranking by score with ties to the lower
 * id. `sorted` holds (at least) the top `count` scores in ascending order: a native numeric sort
 * finds the cut-off, so no comparator runs per pair.
 */
function keepHighest(logits: Float64Array, scores: Float64Array, sorted: Float64Array, count: number): Float64Array {
  const cutoff = sorted[sorted.length - count] as number;
  let tiesLeft = count;
  for (let i = sorted.length - 1; i >= 0 && (sorted[i] as number) > cutoff; i--) tiesLeft--;
  for (let i = 0; i < logits.length; i++) {
    const s = scores[i] as number;
    if (s > cutoff) continue;
    if (s === cutoff && tiesLeft > 0) tiesLeft--;
    else logits[i] = -Infinity;
  }
  return logits;
}

/** Keeps the k highest logits (ties at the cut-off: lower ids first); k = 0 keeps everything. */
export function topKProcessor(k: number): LogitsProcessor {
  if (!Number.isInteger(k) || k < 0) throw new InvalidArgumentError(`topK must be an integer >= 0 (0 = off), got ${k}`, { field: 'topK' });
  return (logits) => {
    if (k === 0 || k >= logits.length) return logits;
    const scores = Float64Array.from(logits);
    return keepHighest(logits, scores, Float64Array.from(scores).sort(), k);
  };
}

/**
 * Nucleus filter: keeps the smallest set of most probable tokens whose probability sums to at least
 * topP (ranked by probability, ties by lower id), so the token that crosses topP is kept.
 */
export function topPProcessor(topP: number): LogitsProcessor {
  if (!(topP > 0 && topP <= 1)) throw new InvalidArgumentError(`topP must be in (0, 1], got ${topP}`, { field: 'topP' });
  return (logits) => {
    if (topP === 1) return logits;
    const probs = softmax(logits);
    // A token of probability q <= (1 - topP) / V is never in the nucleus (everything ranked at or
    // after it sums to at most V q <= 1 - topP), so only the rest is sorted; the factor 1/2 keeps
    // float rounding from dropping a borderline token.
    const floor = ((1 - topP) / probs.length) * 0.5;
    const above = new Float64Array(probs.length);
    let n = 0;
    for (let i = 0; i < probs.length; i++) if ((probs[i] as number) > floor) above[n++] = probs[i] as number;
    const candidates = above.subarray(0, n).sort();
    let mass = 0;
    let count = 0;
    for (let i = candidates.length - 1; i >= 0; i--) {
      mass += candidates[i] as number;
      count++;
      if (mass >= topP) break;
    }
    return keepHighest(logits, probs, candidates, count);
  };
}

/** Runs the processors in order on a float64 copy of the row. */
export function processLogits(row: ArrayLike<number>, processors: readonly LogitsProcessor[]): Float64Array {
  let logits = toFloat64Logits(row);
  for (const p of processors) logits = p(logits);
  return logits;
}
