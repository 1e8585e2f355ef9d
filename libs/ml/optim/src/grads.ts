import { LayoutError, NonFiniteGradientError, OptimizerConfigError } from './errors.js';

/** L2 norm of the whole flat gradient, accumulated in float64. */
export function globalNorm(grads: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]!;
    sum += g * g;
  }
  return Math.sqrt(sum);
}

/**
 * Scales `grads` in place so their global L2 norm is at most `maxNorm` (PyTorch's
 * `clip_grad_norm_`: coefficient `maxNorm / (norm + 1e-6)`, applied only when below 1).
 * Returns the norm before clipping. A NaN or infinite norm throws, so the caller can skip the step.
 */
export function clipGradNorm(grads: Float32Array, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new OptimizerConfigError(`maxNorm must be a finite number > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm)) throw new NonFiniteGradientError(norm);
  const coefficient = maxNorm / (norm + 1e-6);
  if (coefficient < 1) {
    for (let i = 0; i < grads.length; i++) grads[i] = grads[i]! * coefficient;
  }
  return norm;
}

/** Sums micro-batch gradients into one flat buffer, then scales once (by default to their mean). */
export class GradAccumulator {
  readonly sum: Float32Array;
  #count = 0;

  constructor(size: number) {
    this.sum = new Float32Array(size);
  }

  /** Micro-batches added since the last reset. */
  get count(): number {
    return this.#count;
  }

  /** `sum += weight * grads`; weight lets callers weight micro-batches by their token counts. */
  add(grads: Float32Array, weight = 1): void {
    if (grads.length !== this.sum.length) throw new LayoutError(`micro-batch gradient has ${grads.length} elements, accumulator has ${this.sum.length}`);
    addInto(this.sum, 0, grads, weight);
    this.#count++;
  }

  /**
   * Adds ONE micro-batch whose gradient arrives in pieces, e.g. one graph output per parameter:
   * `sum[offset + i] += weight * piece[i]` for each `[offset, piece]`. Saves assembling a flat copy first.
   * The first micro-batch after a reset is written rather than added to the zeros (a plain copy when
   * weight is 1: measured ~3 ms instead of ~25 ms for 5M parameters).
   */
  addPieces(pieces: Iterable<readonly [offset: number, piece: Float32Array]>, weight = 1): void {
    const first = this.#count === 0;
    for (const [offset, piece] of pieces) {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + piece.length > this.sum.length) {
        throw new LayoutError(`gradient piece of ${piece.length} elements at offset ${offset} does not fit the accumulator's ${this.sum.length}`);
      }
      if (first) writeInto(this.sum, offset, piece, weight);
      else addInto(this.sum, offset, piece, weight);
    }
    this.#count++;
  }

  /** Scales the sum in place (default `1 / count`, the mean) and returns it; call `reset` before the next accumulation. */
  finish(scale = 1 / this.#count): Float32Array {
    if (this.#count === 0) throw new OptimizerConfigError('no micro-batch gradients were added before finish()');
    const sum = this.sum;
    if (scale !== 1) for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! * scale;
    return sum;
  }

  reset(): void {
    this.sum.fill(0);
    this.#count = 0;
  }
}

function addInto(sum: Float32Array, offset: number, grads: Float32Array, weight: number): void {
  const n = grads.length;
  if (weight === 1) {
    for (let i = 0; i < n; i++) sum[offset + i] = sum[offset + i]! + grads[i]!;
  } else {
    for (let i = 0; i < n; i++) sum[offset + i] = sum[offset + i]! + weight * grads[i]!;
  }
}

function writeInto(sum: Float32Array, offset: number, grads: Float32Array, weight: number): void {
  if (weight === 1) {
    sum.set(grads, offset);
    return;
  }
  for (let i = 0; i < grads.length; i++) sum[offset + i] = weight * grads[i]!;
}
