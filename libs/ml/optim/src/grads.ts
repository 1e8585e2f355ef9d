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
    const sum = this.sum;
    if (weight === 1) {
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + grads[i]!;
    } else {
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + weight * grads[i]!;
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
