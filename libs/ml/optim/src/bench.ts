import { AdamW } from './adamw.js';
import { ParamLayout } from './params.js';

/**
 * Times AdamW steps over `nParams` parameters split into a decayed matrix and a no-decay vector,
 * and returns the best observed nanoseconds per parameter per step (best-of, because this runs on
 * shared machines where the median measures the neighbours).
 */
export function benchAdamW(nParams: number, steps = 8): number {
  const small = Math.max(1, Math.floor(nParams / 100));
  const layout = new ParamLayout([
    ['weight', [nParams - small]],
    ['norm', [small]],
  ]);
  const params = new Float32Array(layout.size);
  const grads = new Float32Array(layout.size);
  for (let i = 0; i < layout.size; i++) {
    params[i] = Math.sin(i) * 0.02;
    grads[i] = Math.cos(i) * 1e-3;
  }
  const optimizer = new AdamW(layout, { schedule: { kind: 'constant', lr: 1e-3 }, noDecay: (name) => name === 'norm' });
  optimizer.step(params, grads);
  let best = Infinity;
  for (let s = 0; s < steps; s++) {
    const start = process.hrtime.bigint();
    optimizer.step(params, grads);
    const elapsed = Number(process.hrtime.bigint() - start);
    best = Math.min(best, elapsed / nParams);
  }
  return best;
}
