import { InvalidArgumentError } from '@mstar/errors';
import { createRng, type Rng } from '@mstar/metrics';
import { describe, expect, it } from 'vitest';
import {
  NonFiniteLogitsError,
  argmax,
  checkStop,
  contextLimitCriterion,
  drawToken,
  eosCriterion,
  maxNewTokensCriterion,
  processLogits,
  sample,
  softmax,
  temperatureProcessor,
  topKProcessor,
  topPProcessor,
} from '../src/index.js';

const logOf = (probs: readonly number[]): number[] => probs.map(Math.log);
const kept = (logits: Float64Array): number[] => [...logits.keys()].filter((i) => logits[i] !== -Infinity);
/** An Rng whose float() returns the given values in turn (the draw's only use of randomness). */
const fixedRng = (...values: number[]): Rng => ({ ...createRng(0), float: () => values.shift() as number });

describe('softmax', () => {
  it('subtracts the max, so huge logits do not overflow', () => {
    const p = softmax([1000, 1000, 999]);
    const e = Math.exp(-1);
    expect([...p]).toEqual([1 / (2 + e), 1 / (2 + e), e / (2 + e)]);
  });

  it('gives masked (-Infinity) tokens exactly 0 and sums to 1 in float64', () => {
    const p = softmax(Float32Array.from([0.5, -Infinity, 2, -3]));
    expect(p[1]).toBe(0);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 15);
  });
});

describe('argmax', () => {
  it.each([
    [[1, 5, 5, 2], 1],
    [[7, 7, 7], 0],
    [[-Infinity, -3, -Infinity], 1],
    [[0.1, 0.2, 0.3], 2],
  ])('argmax(%j) = %i (ties go to the lowest id)', (logits, expected) => {
    expect(argmax(logits)).toBe(expected);
  });

  it('rejects NaN and +Infinity, naming the index', () => {
    expect(() => argmax([0, Number.NaN])).toThrow(NonFiniteLogitsError);
    expect(() => argmax([0, 1, Infinity])).toThrow(/logits\[2\] is Infinity/);
  });

  it('rejects a row with nothing to choose', () => {
    expect(() => argmax([-Infinity, -Infinity])).toThrow(InvalidArgumentError);
  });
});

describe('logits processors', () => {
  it('temperature divides the logits', () => {
    expect([...processLogits([2, -4, 1], [temperatureProcessor(2)])]).toEqual([1, -2, 0.5]);
    expect(() => temperatureProcessor(0)).toThrow(InvalidArgumentError);
  });

  // probs: id0 0.1, id1 0.4, id2 0.2, id3 0.3 -> ranked 1, 3, 2, 0 with cumulative 0.4, 0.7, 0.9, 1.
  it.each([
    [0.05, [1]],
    [0.4, [1]],
    [0.41, [1, 3]],
    [0.69, [1, 3]],
    [0.71, [1, 2, 3]],
    [0.89, [1, 2, 3]],
    [0.95, [0, 1, 2, 3]],
    [1, [0, 1, 2, 3]],
  ])('top-p %f keeps %j (the token that crosses p is kept)', (topP, expected) => {
    expect(kept(processLogits(logOf([0.1, 0.4, 0.2, 0.3]), [topPProcessor(topP)]))).toEqual(expected);
  });

  it('top-p breaks probability ties by the lower id', () => {
    expect(kept(processLogits(logOf([0.3, 0.3, 0.4]), [topPProcessor(0.5)]))).toEqual([0, 2]);
    expect(kept(processLogits(logOf([0.25, 0.25, 0.25, 0.25]), [topPProcessor(0.3)]))).toEqual([0, 1]);
  });

  it('top-p finds the nucleus among many tiny tokens', () => {
    // One token of 0.5 and 1000 of 0.0005 each: p = 0.5005 needs the big one and exactly 1 more.
    const probs = [0.5, ...Array.from({ length: 1000 }, () => 0.0005)];
    expect(kept(processLogits(logOf(probs), [topPProcessor(0.5004)]))).toEqual([0, 1]);
  });

  it.each([
    [[1, 3, 3, 2], 2, [1, 2]],
    [[5, 1, 5, 5], 2, [0, 2]],
    [[5, 1, 5, 5], 0, [0, 1, 2, 3]],
    [[5, 1, 5, 5], 9, [0, 1, 2, 3]],
    [[0, -Infinity, 2], 1, [2]],
  ])('top-k on %j with k=%i keeps %j', (logits, k, expected) => {
    expect(kept(processLogits(logits, [topKProcessor(k)]))).toEqual(expected);
  });

  it('rejects bad settings with the field named', () => {
    for (const make of [() => topPProcessor(0), () => topPProcessor(1.5), () => topPProcessor(Number.NaN), () => topKProcessor(-1), () => topKProcessor(1.5)]) {
      expect(make).toThrow(InvalidArgumentError);
    }
    expect(() => topPProcessor(0)).toThrow(expect.objectContaining({ field: 'topP' }) as Error);
  });
});

describe('drawToken', () => {
  // probs 0.2, 0.5, 0.3: the inverse CDF maps u in [0, .2) -> 0, [.2, .7) -> 1, [.7, 1) -> 2.
  it.each([
    [0, 0],
    [0.19, 0],
    [0.2000001, 1],
    [0.69, 1],
    [0.7000001, 2],
    [0.999999, 2],
  ])('u = %f draws %i', (u, expected) => {
    expect(drawToken(logOf([0.2, 0.5, 0.3]), fixedRng(u))).toBe(expected);
  });

  it('never draws a masked token, even when u is at the top of the range', () => {
    expect(drawToken([0, 1, -Infinity], fixedRng(0.9999999999999999))).toBe(1);
  });
});

describe('sample', () => {
  it('is greedy at temperature 0 (lowest id on ties) and draws nothing', () => {
    const rng = createRng(5);
    expect(sample([1, 5, 5, 2], { temperature: 0, topP: 0.1 }, rng)).toBe(1);
    expect(rng.uint32()).toBe(createRng(5).uint32());
  });

  it('approaches greedy as the temperature goes to 0', () => {
    const rng = createRng(9);
    const draws = Array.from({ length: 500 }, () => sample([1, 1.5, 0.2, 1.49], { temperature: 1e-3 }, rng));
    expect(new Set(draws)).toEqual(new Set([1]));
  });

  it('matches the softmax frequencies at T = 1 and renormalises inside the nucleus', () => {
    const logits = logOf([0.2, 0.5, 0.3]);
    const count = (topP: number): number[] => {
      const rng = createRng(123);
      const counts = [0, 0, 0];
      for (let i = 0; i < 20_000; i++) counts[sample(logits, { temperature: 1, topP }, rng)]! += 1;
      return counts.map((c) => c / 20_000);
    };
    const full = count(1);
    [0.2, 0.5, 0.3].forEach((p, i) => expect(Math.abs((full[i] as number) - p)).toBeLessThan(0.015));
    const nucleus = count(0.75);
    expect(nucleus[0]).toBe(0);
    expect(Math.abs((nucleus[1] as number) - 0.625)).toBeLessThan(0.015);
  });

  it('flattens the distribution at high temperature', () => {
    const rng = createRng(4);
    const counts = [0, 0];
    for (let i = 0; i < 10_000; i++) counts[sample([0, Math.log(4)], { temperature: 2 }, rng)]! += 1;
    // T = 2 turns odds 1:4 into 1:2.
    expect(Math.abs((counts[1] as number) / 10_000 - 2 / 3)).toBeLessThan(0.02);
  });

  it('gives the same tokens for the same seed and different ones for another', () => {
    const logits = Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number): number[] => {
      const rng = createRng(seed);
      return Array.from({ length: 20 }, () => sample(logits, { temperature: 1, topP: 0.95 }, rng));
    };
    expect(run(1)).toEqual(run(1));
    expect(run(1)).not.toEqual(run(2));
  });

  it('rejects a negative temperature', () => {
    expect(() => sample([0, 1], { temperature: -1 }, createRng(0))).toThrow(expect.objectContaining({ field: 'temperature' }) as Error);
  });
});

describe('stopping criteria', () => {
  const criteria = [eosCriterion([2, 9]), maxNewTokensCriterion(3), contextLimitCriterion(10)];
  it.each([
    [5, [7], null],
    [5, [7, 2], 'eos'],
    [5, [7, 8, 9], 'eos'],
    [5, [7, 8, 6], 'max_new_tokens'],
    [8, [7, 8], 'context_limit'],
    [8, [7], null],
  ])('prompt %i, tokens %j -> %s', (promptLength, tokens, expected) => {
    expect(checkStop(criteria, { promptLength, tokens })).toBe(expected);
  });

  it('never stops on EOS with an empty id list', () => {
    expect(eosCriterion([])({ promptLength: 1, tokens: [0, 1, 2] })).toBeNull();
  });

  it('rejects bad limits', () => {
    expect(() => maxNewTokensCriterion(0)).toThrow(InvalidArgumentError);
    expect(() => contextLimitCriterion(2.5)).toThrow(InvalidArgumentError);
    expect(() => eosCriterion(-1)).toThrow(InvalidArgumentError);
  });
});
