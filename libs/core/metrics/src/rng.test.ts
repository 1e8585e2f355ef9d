import { describe, expect, it } from 'vitest';
import { MetricsError, createRng, deriveSeed } from './index.js';

describe('createRng', () => {
  it('matches an independent xoshiro128** + splitmix32 reference bit for bit', () => {
    // Reference values from a separate Python implementation of the same two algorithms.
    const rng = createRng(42);
    expect([rng.uint32(), rng.uint32(), rng.uint32(), rng.uint32(), rng.uint32()]).toEqual([
      2837322924, 544945897, 479756282, 3500138142, 339756180,
    ]);
    const zero = createRng(0);
    expect([zero.uint32(), zero.uint32(), zero.uint32()]).toEqual([3809008728, 1133695204, 53579671]);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = createRng('run-1');
    const b = createRng('run-1');
    const c = createRng('run-2');
    const xs = Array.from({ length: 8 }, () => a.float());
    expect(Array.from({ length: 8 }, () => b.float())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.float())).not.toEqual(xs);
  });

  it('draws floats in [0, 1) and unbiased integers', () => {
    const rng = createRng(7);
    const counts = new Array<number>(6).fill(0);
    let minFloat = 1;
    let maxFloat = 0;
    for (let i = 0; i < 60_000; i++) {
      const f = rng.float();
      minFloat = Math.min(minFloat, f);
      maxFloat = Math.max(maxFloat, f);
      const k = rng.int(6);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    expect(minFloat).toBeGreaterThanOrEqual(0);
    expect(maxFloat).toBeLessThan(1);
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
    const ranged = new Set(Array.from({ length: 1000 }, () => rng.range(-2, 2)));
    expect([...ranged].sort((x, y) => x - y)).toEqual([-2, -1, 0, 1, 2]);
  });

  it('shuffles into a permutation and samples distinct items', () => {
    const rng = createRng(3);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = rng.shuffle(items);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
    const sample = rng.sample(items, 5);
    expect(new Set(sample).size).toBe(5);
    expect(rng.sample(items, 50)).toHaveLength(20);
    expect(items).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('forks independent reproducible streams', () => {
    const a = createRng(1).fork();
    const b = createRng(1).fork();
    expect(a.uint32()).toBe(b.uint32());
  });

  it('rejects bad arguments', () => {
    const rng = createRng(1);
    expect(() => rng.int(0)).toThrow(MetricsError);
    expect(() => rng.range(3, 2)).toThrow('min <= max');
    expect(() => rng.pick([])).toThrow('non-empty');
    expect(() => createRng(1.5)).toThrow('safe integer');
  });
});

describe('deriveSeed', () => {
  it('is stable and label-sensitive', () => {
    expect(deriveSeed(42, 'split', 'test')).toBe(deriveSeed(42, 'split', 'test'));
    expect(deriveSeed(42, 'split', 'test')).not.toBe(deriveSeed(42, 'split', 'train'));
    expect(deriveSeed(42, 'ab', 'c')).not.toBe(deriveSeed(42, 'a', 'bc'));
  });
});
