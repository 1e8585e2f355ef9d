import { GraphBuildError } from './errors.js';
import type { ParamInfo } from './graph.js';
import type { TypedArray } from './tensor.js';

/** Deterministic PRNG (mulberry32): the same seed gives the same weights on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Initial weights for every param from its `init` hint (normal via Box-Muller). */
export function initParams(params: Iterable<ParamInfo>, seed: number): Map<string, TypedArray> {
  const rand = seededRandom(seed);
  const out = new Map<string, TypedArray>();
  for (const p of params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    let data: Float32Array | Float64Array;
    if (p.value.dtype === 'float32') data = new Float32Array(n);
    else if (p.value.dtype === 'float64') data = new Float64Array(n);
    else throw new GraphBuildError(`initParams: '${p.value.name}' is ${p.value.dtype}; only float32/float64 are initialized here`);
    const init = p.init;
    switch (init.kind) {
      case 'ones':
        data.fill(1);
        break;
      case 'zeros':
        break;
      case 'uniform':
        for (let i = 0; i < n; i++) data[i] = (2 * rand() - 1) * init.limit;
        break;
      case 'normal':
        for (let i = 0; i < n; i++) data[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()) * init.std;
        break;
    }
    out.set(p.value.name, data);
  }
  return out;
}
