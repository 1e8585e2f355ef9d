import { decaySegments, decodeState, encodeState, checkNonNegative, checkUnitInterval, noDecayNames } from './optimizer.js';
import type { DecaySegment, NoDecayPredicate } from './optimizer.js';
import type { ParamLayout } from './params.js';
import { learningRate, validateSchedule } from './schedule.js';
import type { LrSchedule } from './schedule.js';
import { OptimizerConfigError, OptimizerStateError } from './errors.js';
import { createAdamwKernel } from './kernel.js';
import type { AdamwKernel } from './kernel.js';

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWOptions extends Partial<AdamWHyper> {
  schedule: LrSchedule;
  /** Parameters for which weight decay is off; resolved once to a name list, which is what gets saved. */
  noDecay?: NoDecayPredicate;
}

const KIND = 'adamw';
const BUFFERS = ['m', 'v'] as const;
// Parameters and gradients pass through kernel memory in chunks small enough to stay in cache, so
// the copies cost little next to the update itself (measured: 16K elements beat 4K and 64K).
const CHUNK = 16_384;

/**
 * AdamW (Loshchilov & Hutter) with PyTorch's update order: decoupled decay `p *= 1 - lr*wd`, then
 * `p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`. The update runs in a WebAssembly
 * SIMD kernel in float32 (see kernel.ts); wasm arithmetic is exact IEEE and never fused, so the
 * result depends only on (params, grads, m, v, steps, settings) and a saved state resumes bit for bit.
 * `m` and `v` live in the kernel's memory (4 GiB at most: about 500M parameters).
 */
export class AdamW {
  readonly layout: ParamLayout;
  readonly hyper: Readonly<AdamWHyper>;
  readonly schedule: LrSchedule;
  /** First and second moment estimates, flat over the layout. */
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly noDecay: ReadonlySet<string>;
  #steps: number;
  readonly #segments: readonly DecaySegment[];
  readonly #kernel: AdamwKernel['run'];
  /** The whole kernel memory as floats; scratch chunks for params and grads follow m and v. */
  readonly #heap: Float32Array;

  constructor(layout: ParamLayout, options: AdamWOptions) {
    this.layout = layout;
    this.hyper = checkHyper({ beta1: options.beta1 ?? 0.9, beta2: options.beta2 ?? 0.999, eps: options.eps ?? 1e-8, weightDecay: options.weightDecay ?? 0.01 });
    this.schedule = validateSchedule(options.schedule);
    this.noDecay = noDecayNames(layout, options.noDecay);
    const kernel = createAdamwKernel(2 * layout.size + 2 * CHUNK);
    if (kernel === undefined) throw new OptimizerConfigError(`AdamW state for ${layout.size} parameters exceeds the 4 GiB WebAssembly memory`);
    this.#kernel = kernel.run;
    this.#heap = kernel.heap;
    this.m = this.#heap.subarray(0, layout.size);
    this.v = this.#heap.subarray(layout.size, 2 * layout.size);
    this.#steps = 0;
    this.#segments = decaySegments(layout, this.noDecay);
  }

  /** Updates applied so far; also the schedule position. */
  get steps(): number {
    return this.#steps;
  }

  /** The learning rate the next `step` will use. */
  get nextLr(): number {
    return learningRate(this.schedule, this.#steps);
  }

  /** Applies one update to `params` in place from `grads` (both flat over the layout); returns the rate used. */
  step(params: Float32Array, grads: Float32Array): number {
    this.layout.check(params, 'params');
    this.layout.check(grads, 'grads');
    const lr = learningRate(this.schedule, this.#steps);
    const t = this.#steps + 1;
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const heap = this.#heap;
    const size = this.layout.size;
    const pScratch = 2 * size;
    const gScratch = pScratch + CHUNK;
    for (const segment of this.#segments) {
      const keep = segment.decay ? 1 - lr * weightDecay : 1;
      for (let start = segment.start; start < segment.end; start += CHUNK) {
        const end = Math.min(segment.end, start + CHUNK);
        const n = end - start;
        heap.set(params.subarray(start, end), pScratch);
        heap.set(grads.subarray(start, end), gScratch);
        this.#kernel(pScratch * 4, gScratch * 4, start * 4, (size + start) * 4, n, beta1, beta2, 1 - beta1, 1 - beta2, bc1, bc2, lr, eps, keep);
        params.set(heap.subarray(pScratch, pScratch + n), start);
      }
    }
    this.#steps = t;
    return lr;
  }

  /** The complete state (moments, step count, schedule, hyper-parameters, no-decay names) as safetensors bytes. */
  saveState(): Uint8Array {
    return encodeState(this.layout, {
      kind: KIND,
      steps: this.#steps,
      schedule: this.schedule,
      hyper: this.hyper,
      noDecay: [...this.noDecay],
      buffers: { m: this.m, v: this.v },
    });
  }

  /** A fresh optimizer continuing exactly where the saved one stopped; `layout` must match the saved one. */
  static loadState(bytes: Uint8Array, layout: ParamLayout): AdamW {
    const state = decodeState(bytes, layout, KIND, BUFFERS);
    let hyper: AdamWHyper;
    try {
      hyper = checkHyper(state.hyper as AdamWHyper);
    } catch (cause) {
      throw new OptimizerStateError('optimizer state holds invalid AdamW hyper-parameters', { cause });
    }
    const noDecay = new Set(state.noDecay);
    const optimizer = new AdamW(layout, { ...hyper, schedule: state.schedule, noDecay: (name) => noDecay.has(name) });
    optimizer.m.set(state.buffers['m']!);
    optimizer.v.set(state.buffers['v']!);
    optimizer.#steps = state.steps;
    return optimizer;
  }
}

function checkHyper(hyper: AdamWHyper): AdamWHyper {
  checkUnitInterval('beta1', hyper.beta1, { open: true });
  checkUnitInterval('beta2', hyper.beta2, { open: true });
  checkNonNegative('eps', hyper.eps);
  checkNonNegative('weightDecay', hyper.weightDecay);
  return { beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay };
}
