import { describe, expect, it } from 'vitest';
import { parse, serialize } from '@mstar/safetensors';
import {
  AdamW,
  GradAccumulator,
  LayoutError,
  NonFiniteGradientError,
  OptimizerConfigError,
  OptimizerStateError,
  ParamLayout,
  ParamStore,
  Sgd,
  benchAdamW,
  clipGradNorm,
  globalNorm,
  learningRate,
} from '@mstar/optim';
import type { LrSchedule } from '@mstar/optim';

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a: Float32Array, b: Float32Array): boolean => bytesOf(a).equals(bytesOf(b));

describe('ParamStore', () => {
  it('packs tensors into one flat buffer with live views and round-trips through safetensors', () => {
    const store = ParamStore.fromTensors({
      'w': { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      'norm.bias': { shape: [3], data: new Float32Array([5, 6, 7]) },
    });
    expect(store.layout.size).toBe(7);
    expect(store.layout.entries.map((e) => [e.name, e.offset, e.size])).toEqual([['w', 0, 4], ['norm.bias', 4, 3]]);
    expect([...store.data]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    store.view('norm.bias')[1] = 60;
    expect(store.data[5]).toBe(60);

    const tensors = parse(serialize(store.toTensors())).tensors;
    // The file orders tensors by name; the layout puts them back in the model's order.
    expect(Object.keys(tensors)).toEqual(['norm.bias', 'w']);
    const back = ParamStore.fromTensors(tensors, store.layout);
    expect(sameBits(back.data, store.data)).toBe(true);
    expect(() => ParamStore.fromTensors({ w: tensors['w']! }, store.layout)).toThrow(/parameter "norm.bias" is missing/);
    expect(() => ParamStore.fromTensors({ ...tensors, x: tensors['w']! }, store.layout)).toThrow(/tensors not in the parameter layout: x/);
    expect(back.layout.get('w').shape).toEqual([2, 2]);
  });

  it('refuses tensors whose data does not fit their shape, and unknown names', () => {
    expect(() => ParamStore.fromTensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/parameter "w" has shape \[2, 2\] \(4 elements\) but 3 values/);
    expect(() => ParamStore.fromTensors({ w: { shape: [1], data: new Float64Array(1) } })).toThrow(/parameter "w" must be float32 data, got \[object Float64Array\]/);
    const store = ParamStore.fromTensors({ w: { shape: [1], data: new Float32Array(1) } });
    expect(() => store.view('nope')).toThrow(LayoutError);
    expect(() => new ParamStore(store.layout, new Float32Array(2))).toThrow(/parameter buffer has 2 elements but the parameter layout has 1/);
  });
});

describe('AdamW', () => {
  it('matches hand-computed values with decoupled decay and bias correction (dyadic, exact)', () => {
    // beta1 = 1/2, beta2 = 3/4, eps = 0 and a constant gradient of 1 make every bias-corrected moment
    // exactly 1, so each step is p <- p * (1 - lr*wd) - lr = 0.75 p - 0.5 for the decayed parameter
    // and p <- p - 0.5 for the no-decay one: 2 -> 1 -> 0.25 -> -0.3125 and 2 -> 1.5 -> 1 -> 0.5.
    const layout = new ParamLayout([['w', [1]], ['b', [1]]]);
    const opt = new AdamW(layout, { schedule: { kind: 'constant', lr: 0.5 }, beta1: 0.5, beta2: 0.75, eps: 0, weightDecay: 0.5, noDecay: (n) => n === 'b' });
    const p = new Float32Array([2, 2]);
    const g = new Float32Array([1, 1]);
    const seen: number[][] = [];
    for (let i = 0; i < 3; i++) {
      opt.step(p, g);
      seen.push([...p]);
    }
    expect(seen).toEqual([[1, 1.5], [0.25, 1], [-0.3125, 0.5]]);
    expect([...opt.m]).toEqual([0.875, 0.875]); // 1 - 0.5^3
    expect([...opt.v]).toEqual([0.578125, 0.578125]); // 1 - 0.75^3
    expect(opt.steps).toBe(3);
  });

  it('matches a float32 reference, operation by operation, for three steps with default betas', () => {
    const f = Math.fround;
    const layout = new ParamLayout([['w', [3]]]);
    const lr = 1e-3;
    const wd = 0.01;
    const opt = new AdamW(layout, { schedule: { kind: 'constant', lr }, weightDecay: wd });
    const p = new Float32Array([1, -0.5, 0.25]);
    const grads = [[0.5, -0.1, 0], [0.25, 0.2, 1e-4], [-1, 0.3, -2]];
    const ref = { p: [...p], m: [0, 0, 0], v: [0, 0, 0] };
    for (const [step, g] of grads.entries()) {
      opt.step(p, new Float32Array(g));
      const t = step + 1;
      const [b1, b2, c1, c2, bc1, bc2, rate, eps, keep] = [0.9, 0.999, 1 - 0.9, 1 - 0.999, 1 - 0.9 ** t, 1 - 0.999 ** t, lr, 1e-8, 1 - lr * wd].map(f) as [number, number, number, number, number, number, number, number, number];
      for (let i = 0; i < 3; i++) {
        const gi = f(g[i]!);
        ref.m[i] = f(f(b1 * ref.m[i]!) + f(c1 * gi));
        ref.v[i] = f(f(b2 * ref.v[i]!) + f(c2 * f(gi * gi)));
        const numerator = f(rate * f(ref.m[i]! / bc1));
        const denominator = f(f(Math.sqrt(f(ref.v[i]! / bc2))) + eps);
        ref.p[i] = f(f(ref.p[i]! * keep) - f(numerator / denominator));
      }
      expect([...p]).toEqual(ref.p);
      expect([...opt.m]).toEqual(ref.m);
      expect([...opt.v]).toEqual(ref.v);
    }
    // Step 1 by hand for w[0]: m^ = 0.5, v^ = 0.25, update = 1e-3 * 0.5 / (0.5 + 1e-8), p = 1 * (1 - 1e-5) - update,
    // which float32 rounding leaves within one unit in the last place.
    const first = new Float32Array([1]);
    new AdamW(new ParamLayout([['w', [1]]]), { schedule: { kind: 'constant', lr }, weightDecay: wd }).step(first, new Float32Array([0.5]));
    expect(Math.abs(first[0]! - (0.99999 - 0.0005 / 0.50000001))).toBeLessThanOrEqual(2 ** -24);
  });

  it('updates parameter counts that are not multiples of the SIMD width or the chunk size', () => {
    // 16384 + 5 elements: one full chunk, then a chunk with a scalar tail; a second tensor without decay.
    const layout = new ParamLayout([['w', [16_389]], ['b', [3]]]);
    const opt = new AdamW(layout, { schedule: { kind: 'constant', lr: 0.5 }, beta1: 0.5, beta2: 0.75, eps: 0, weightDecay: 0.5, noDecay: (n) => n === 'b' });
    const p = new Float32Array(layout.size).fill(2);
    opt.step(p, new Float32Array(layout.size).fill(1));
    expect(p.subarray(0, 16_389).every((x) => x === 1)).toBe(true);
    expect([...p.subarray(16_389)]).toEqual([1.5, 1.5, 1.5]);
  });

  it('rejects impossible hyper-parameters and buffers of the wrong size', () => {
    const layout = new ParamLayout([['w', [2]]]);
    expect(() => new AdamW(layout, { schedule: { kind: 'constant', lr: 1 }, beta1: 1 })).toThrow(/beta1 must be in \[0, 1\), got 1/);
    expect(() => new AdamW(layout, { schedule: { kind: 'constant', lr: -1 } })).toThrow(OptimizerConfigError);
    const opt = new AdamW(layout, { schedule: { kind: 'constant', lr: 1 } });
    expect(() => opt.step(new Float32Array(2), new Float32Array(3))).toThrow(/grads has 3 elements but the parameter layout has 2/);
  });

  it('classifies its errors for the gRPC boundary: bad settings are INVALID_ARGUMENT, foreign state FAILED_PRECONDITION', () => {
    expect(new OptimizerConfigError('x').code).toBe('INVALID_ARGUMENT');
    expect(new LayoutError('x').code).toBe('INVALID_ARGUMENT');
    expect(new NonFiniteGradientError(Number.NaN).code).toBe('INVALID_ARGUMENT');
    expect(new OptimizerStateError('x').code).toBe('FAILED_PRECONDITION');
    expect(new OptimizerStateError('x').name).toBe('OptimizerStateError');
  });
});

describe('gradient clipping and accumulation', () => {
  it('clips to the global norm and returns the norm before clipping', () => {
    const g = new Float32Array([3, 4]);
    expect(clipGradNorm(g, 1)).toBe(5);
    expect([...g]).toEqual([Math.fround(3 / 5.000001), Math.fround(4 / 5.000001)]);
    expect(globalNorm(g)).toBeCloseTo(1, 6);
    const small = new Float32Array([0.3, 0.4]);
    expect(clipGradNorm(small, 1)).toBeCloseTo(0.5, 7);
    expect([...small]).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(() => clipGradNorm(new Float32Array([1, NaN]), 1)).toThrow(NonFiniteGradientError);
    expect(() => clipGradNorm(new Float32Array([1, Infinity]), 1)).toThrow(/gradient global norm is Infinity/);
  });

  it('sums micro-batch gradients and scales once', () => {
    const acc = new GradAccumulator(2);
    acc.add(new Float32Array([1, 2]));
    acc.add(new Float32Array([3, 6]));
    expect(acc.count).toBe(2);
    expect([...acc.finish()]).toEqual([2, 4]);
    acc.reset();
    acc.add(new Float32Array([1, 1]), 3);
    acc.add(new Float32Array([2, 0]), 1);
    expect([...acc.finish(0.25)]).toEqual([1.25, 0.75]);
    acc.reset();
    // One micro-batch in pieces (one per parameter) counts once and lands at the given offsets.
    acc.addPieces([[0, new Float32Array([4])], [1, new Float32Array([8])]], 0.5);
    acc.addPieces([[1, new Float32Array([2])]]);
    expect(acc.count).toBe(2);
    expect([...acc.finish()]).toEqual([1, 3]);
    expect(() => acc.addPieces([[1, new Float32Array(2)]])).toThrow(/gradient piece of 2 elements at offset 1 does not fit the accumulator's 2/);
    acc.reset();
    expect(() => acc.finish()).toThrow(OptimizerConfigError);
    expect(() => acc.add(new Float32Array(3))).toThrow(LayoutError);
  });
});

describe('learning-rate schedules', () => {
  it('constant and linear warm-up', () => {
    expect(learningRate({ kind: 'constant', lr: 0.1 }, 123)).toBe(0.1);
    const warm: LrSchedule = { kind: 'linear-warmup', lr: 1, warmupSteps: 4 };
    expect([0, 1, 2, 3, 4, 50].map((s) => learningRate(warm, s))).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
  });

  it('warm-up then cosine decay to the floor', () => {
    const cosine: LrSchedule = { kind: 'warmup-cosine', lr: 1, warmupSteps: 2, totalSteps: 6, minLr: 0.1 };
    expect(learningRate(cosine, 0)).toBe(0.5);
    expect(learningRate(cosine, 1)).toBe(1);
    expect(learningRate(cosine, 2)).toBe(1);
    expect(learningRate(cosine, 3)).toBeCloseTo(0.1 + 0.45 * (1 + Math.SQRT1_2), 12);
    expect(learningRate(cosine, 4)).toBeCloseTo(0.55, 12);
    expect(learningRate(cosine, 6)).toBeCloseTo(0.1, 12);
    expect(learningRate(cosine, 600)).toBeCloseTo(0.1, 12);
    expect(learningRate(JSON.parse(JSON.stringify(cosine)) as LrSchedule, 3)).toBe(learningRate(cosine, 3));
  });

  it('refuses schedules that cannot work', () => {
    const layout = new ParamLayout([['w', [1]]]);
    expect(() => new AdamW(layout, { schedule: { kind: 'warmup-cosine', lr: 1, warmupSteps: 5, totalSteps: 5, minLr: 0 } })).toThrow(/totalSteps must be an integer > warmupSteps/);
    expect(() => new AdamW(layout, { schedule: { kind: 'warmup-cosine', lr: 1, warmupSteps: 0, totalSteps: 5, minLr: 2 } })).toThrow(/minLr must be within \[0, lr\]/);
    expect(() => learningRate({ kind: 'constant', lr: 1 }, -1)).toThrow(OptimizerConfigError);
  });
});

// A toy problem: minimise sum_i a_i (p_i - t_i)^2 / 2 with a step-dependent perturbation of the gradient.
function quadraticGrad(p: Float32Array, step: number, out: Float32Array): void {
  for (let i = 0; i < p.length; i++) out[i] = (1 + (i % 5)) * (p[i]! - Math.sin(i)) + 0.1 * Math.cos(step * 7 + i);
}

describe('checkpoint and resume', () => {
  const layout = (): ParamLayout => new ParamLayout([['embed', [5, 4]], ['proj.weight', [4, 3]], ['norm.bias', [3]]]);
  const schedule: LrSchedule = { kind: 'warmup-cosine', lr: 0.05, warmupSteps: 3, totalSteps: 16, minLr: 0.005 };
  const noDecay = (name: string): boolean => name.endsWith('.bias') || name.startsWith('embed');
  const init = (): ParamStore => {
    const store = new ParamStore(layout());
    for (let i = 0; i < store.data.length; i++) store.data[i] = Math.cos(i * 1.3);
    return store;
  };

  function train(store: ParamStore, opt: AdamW | Sgd, from: number, to: number): void {
    const grads = new Float32Array(store.layout.size);
    for (let step = from; step < to; step++) {
      quadraticGrad(store.data, step, grads);
      clipGradNorm(grads, 1);
      opt.step(store.data, grads);
    }
  }

  it('AdamW resumed from saved state matches uninterrupted training bit for bit', () => {
    const straight = init();
    const straightOpt = new AdamW(straight.layout, { schedule, weightDecay: 0.1, noDecay });
    train(straight, straightOpt, 0, 16);

    const first = init();
    const firstOpt = new AdamW(first.layout, { schedule, weightDecay: 0.1, noDecay });
    train(first, firstOpt, 0, 8);
    const savedParams = serialize(first.toTensors());
    const savedState = firstOpt.saveState();

    const resumed = ParamStore.fromTensors(parse(savedParams).tensors, layout());
    const resumedOpt = AdamW.loadState(savedState, resumed.layout);
    expect(resumedOpt.steps).toBe(8);
    expect([...resumedOpt.noDecay].sort()).toEqual(['embed', 'norm.bias']);
    expect(resumedOpt.hyper).toEqual(straightOpt.hyper);
    train(resumed, resumedOpt, 8, 16);

    expect(sameBits(resumed.data, straight.data)).toBe(true);
    expect(sameBits(resumedOpt.m, straightOpt.m)).toBe(true);
    expect(sameBits(resumedOpt.v, straightOpt.v)).toBe(true);

    // The control: continuing without the saved moments and step count does not give the same result.
    const naive = ParamStore.fromTensors(parse(savedParams).tensors, layout());
    train(naive, new AdamW(naive.layout, { schedule, weightDecay: 0.1, noDecay }), 8, 16);
    expect(sameBits(naive.data, straight.data)).toBe(false);
  });

  it('SGD with momentum resumes bit for bit too', () => {
    const straight = init();
    const straightOpt = new Sgd(straight.layout, { schedule, momentum: 0.9, weightDecay: 1e-3, noDecay });
    train(straight, straightOpt, 0, 12);
    const first = init();
    const firstOpt = new Sgd(first.layout, { schedule, momentum: 0.9, weightDecay: 1e-3, noDecay });
    train(first, firstOpt, 0, 5);
    const resumedOpt = Sgd.loadState(firstOpt.saveState(), first.layout);
    train(first, resumedOpt, 5, 12);
    expect(sameBits(first.data, straight.data)).toBe(true);
  });

  it('refuses state saved for another layout or optimizer, naming what differs', () => {
    const opt = new AdamW(layout(), { schedule });
    const state = opt.saveState();
    const other = new ParamLayout([['embed', [5, 4]], ['proj.weight', [3, 4]], ['norm.bias', [3]]]);
    expect(() => AdamW.loadState(state, other)).toThrow(/optimizer state tensor "m\/proj.weight" is F32 \[4, 3\] but parameter "proj.weight" is F32 \[3, 4\]/);
    expect(() => AdamW.loadState(state, new ParamLayout([['embed', [5, 4]]]))).toThrow(/tensors for parameters not in this layout: m\/norm.bias, m\/proj.weight/);
    expect(() => Sgd.loadState(state, layout())).toThrow(/optimizer state is for "adamw", not "sgd"/);
    expect(() => AdamW.loadState(state.subarray(0, 100), layout())).toThrow(OptimizerStateError);
  });
});

describe('benchAdamW', () => {
  it('measures a finite per-parameter cost', () => {
    const ns = benchAdamW(200_000, 3);
    console.log(`AdamW ${ns.toFixed(2)} ns/param (200k params)`);
    expect(ns).toBeGreaterThan(0);
    expect(ns).toBeLessThan(100);
  });
});
