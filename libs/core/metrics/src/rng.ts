import { MetricsError } from './errors.js';

/** A seeded pseudo-random source. Same seed, same sequence, on every platform. */
export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  uint32(): number;
  /** A uniform float in [0, 1) with 53 random bits. */
  float(): number;
  /** A uniform integer in [0, n), without modulo bias. */
  int(n: number): number;
  /** A uniform integer in [min, max] (both included). */
  range(min: number, max: number): number;
  /** A uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new array with the items in uniformly random order (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[];
  /** k distinct items in random order (a prefix of a shuffle); k is capped at items.length. */
  sample<T>(items: readonly T[], k: number): T[];
  /** An independent generator seeded from this one's next output. */
  fork(): Rng;
}

/** FNV-1a over UTF-16 code units: turns string seeds and labels into 32-bit seeds. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function toSeed(seed: number | string): number {
  if (typeof seed === 'string') return hashString(seed);
  if (!Number.isSafeInteger(seed)) throw new MetricsError(`rng seed must be a safe integer or a string, got ${seed}`);
  // Fold the high bits in so that seeds above 2^32 still differ.
  return (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
}

/** A 32-bit seed derived from a seed and labels, e.g. deriveSeed(runSeed, 'split', 'test'). */
export function deriveSeed(seed: number | string, ...labels: readonly (string | number)[]): number {
  return hashString([String(toSeed(seed)), ...labels.map(String)].join('\u0000'));
}

// splitmix32 expands one 32-bit seed into the 128-bit xoshiro state; it never yields the all-zero
// state that would make xoshiro stick at zero.
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32. Small, fast, well studied, and
 * reproducible bit for bit in any language, which matters for re-running an experiment.
 */
export function createRng(seed: number | string): Rng {
  const init = splitmix32(toSeed(seed));
  let s0 = init();
  let s1 = init();
  let s2 = init();
  let s3 = init();

  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return result;
  };

  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) {
      throw new MetricsError(`rng.int(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    // Rejection sampling: drop the top partial block of 2^32 so every residue is equally likely.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = uint32();
      if (x < limit) return x % n;
    }
  };

  const rng: Rng = {
    uint32,
    float: () => ((uint32() >>> 5) * 0x4000000 + (uint32() >>> 6)) / 0x20000000000000,
    int,
    range: (min, max) => {
      if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
        throw new MetricsError(`rng.range(min, max) needs integers with min <= max, got ${min}, ${max}`);
      }
      return min + int(max - min + 1);
    },
    pick: (items) => {
      if (items.length === 0) throw new MetricsError('rng.pick needs a non-empty array');
      return items[int(items.length)] as (typeof items)[number];
    },
    shuffle: (items) => {
      const out = items.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const tmp = out[i] as (typeof out)[number];
        out[i] = out[j] as (typeof out)[number];
        out[j] = tmp;
      }
      return out;
    },
    sample: (items, k) => {
      if (!Number.isInteger(k) || k < 0) throw new MetricsError(`rng.sample needs an integer k >= 0, got ${k}`);
      // Partial Fisher-Yates: only the first k positions are drawn.
      const out = items.slice();
      const m = Math.min(k, out.length);
      for (let i = 0; i < m; i++) {
        const j = i + int(out.length - i);
        const tmp = out[i] as (typeof out)[number];
        out[i] = out[j] as (typeof out)[number];
        out[j] = tmp;
      }
      return out.slice(0, m);
    },
    fork: () => createRng(uint32()),
  };
  return rng;
}
