import { describe, expect, it } from 'vitest';
import {
  MetricsError,
  aggregate,
  auc,
  createRng,
  greedyAccuracy,
  majorityVote,
  meanPassAtKUnbiased,
  passAtK,
  passAtKUnbiased,
  rewardPassAtK,
  selectAllCorrect,
  selectRandomK,
  selectThreshold,
  selectTopK,
} from './index.js';

describe('pass@k', () => {
  it('greedy accuracy and Pass@K', () => {
    expect(greedyAccuracy([true, false, true, true])).toBe(0.75);
    expect(passAtK([[false, true], [false, false], [true, true]])).toBeCloseTo(2 / 3, 12);
    expect(() => passAtK([])).toThrow(MetricsError);
  });

  it.each([
    [5, 2, 2, 0.7],
    [16, 1, 4, 0.25],
    [16, 0, 4, 0],
    [4, 2, 3, 1],
    [10, 3, 1, 0.3],
  ])('unbiased pass@k n=%i c=%i k=%i = %f', (n, c, k, expected) => {
    expect(passAtKUnbiased(n, c, k)).toBeCloseTo(expected, 12);
  });

  it('averages the unbiased estimator over prompts', () => {
    expect(meanPassAtKUnbiased([[true, false, false, false], [true, true, false, false]], 2)).toBeCloseTo(
      (0.5 + 5 / 6) / 2,
      12,
    );
    expect(() => passAtKUnbiased(4, 5, 2)).toThrow('0 <= c <= n');
  });

  it('Reward-Pass@k ranks over all samples and breaks ties by sample order', () => {
    const prompts = [
      [
        { correct: false, score: 0.9 },
        { correct: true, score: 0.8 },
        { correct: true, score: 0.1 },
      ],
      [
        { correct: false, score: 0.5 },
        { correct: true, score: 0.5 },
      ],
      [{ correct: true, score: 0.2 }],
      [{ correct: false, score: 1 }],
    ];
    expect(rewardPassAtK(prompts, 1)).toBe(0.25);
    expect(rewardPassAtK(prompts, 2)).toBe(0.75);
    expect(rewardPassAtK(prompts, 16)).toBe(0.75);
    expect(() => rewardPassAtK(prompts, 0)).toThrow('k >= 1');
  });
});

describe('aggregate', () => {
  it.each([
    ['min', 0.5],
    ['mean', 2.2 / 3],
    ['last', 0.8],
    ['product', 0.36],
  ] as const)('%s', (how, expected) => {
    expect(aggregate([0.9, 0.5, 0.8], how)).toBeCloseTo(expected, 12);
  });

  it('rejects empty and non-finite inputs', () => {
    expect(() => aggregate([], 'min')).toThrow('empty list of step scores');
    expect(() => aggregate([0.5, Number.NaN], 'mean')).toThrow('finite');
    expect(() => aggregate([0.5], 'median' as 'min')).toThrow('unknown aggregation "median"');
  });
});

describe('selection rules', () => {
  const samples = [
    { id: 'a', correct: true, score: 0.4 },
    { id: 'b', correct: false, score: 0.99 },
    { id: 'c', correct: true, score: 0.9 },
    { id: 'd', correct: true, score: 0.4 },
    { id: 'e', correct: true, score: 0.7 },
  ];
  const ids = (xs: readonly { id: string }[]): string[] => xs.map((x) => x.id);

  it('all correct', () => {
    expect(ids(selectAllCorrect(samples))).toEqual(['a', 'c', 'd', 'e']);
  });

  it('top-k by score among correct ones, ties by order', () => {
    expect(ids(selectTopK(samples, 2))).toEqual(['c', 'e']);
    expect(ids(selectTopK(samples, 3))).toEqual(['c', 'e', 'a']);
    expect(ids(selectTopK(samples, 10))).toEqual(['c', 'e', 'a', 'd']);
    expect(selectTopK([{ correct: false, score: 1 }], 2)).toEqual([]);
  });

  it('threshold keeps correct samples strictly above alpha', () => {
    expect(ids(selectThreshold(samples, 0.4))).toEqual(['c', 'e']);
    expect(ids(selectThreshold(samples, 0.95))).toEqual([]);
  });

  it('random-k draws distinct correct samples reproducibly', () => {
    const first = ids(selectRandomK(samples, 2, createRng(5)));
    expect(first).toEqual(ids(selectRandomK(samples, 2, createRng(5))));
    expect(new Set(first).size).toBe(2);
    for (const id of first) expect(['a', 'c', 'd', 'e']).toContain(id);
    const seen = new Set<string>();
    const rng = createRng(9);
    for (let i = 0; i < 200; i++) for (const id of ids(selectRandomK(samples, 1, rng))) seen.add(id);
    expect([...seen].sort()).toEqual(['a', 'c', 'd', 'e']);
  });
});

describe('auc', () => {
  it('matches the textbook example', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
  });

  it('counts ties as one half via average ranks', () => {
    expect(auc([0.5, 0.5, 0.5, 0.9], [true, false, false, true])).toBe(0.75);
    expect(auc([1, 1], [true, false])).toBe(0.5);
  });

  it('is 1 for a perfect ranking and 0 for a reversed one', () => {
    expect(auc([0.9, 0.8, 0.1], [true, true, false])).toBe(1);
    expect(auc([0.1, 0.2, 0.9], [true, true, false])).toBe(0);
  });

  it('rejects a single class and mismatched lengths', () => {
    expect(() => auc([0.1, 0.2], [true, true])).toThrow('at least one positive and one negative');
    expect(() => auc([0.1], [true, false])).toThrow('as many labels as scores');
  });
});

describe('majorityVote', () => {
  it('groups answers by their normalised form', () => {
    expect(majorityVote(['3', '3.0', '4', null, '4', '4.0'])).toEqual({ answer: '4', normalized: '4', count: 3 });
  });

  it('breaks ties by first appearance and maps choice letters', () => {
    expect(majorityVote(['a', 'b'])).toEqual({ answer: 'a', normalized: 'a', count: 1 });
    expect(majorityVote(['B', 'red', 'blue'], { choices: ['red', 'blue'] })).toEqual({
      answer: 'B',
      normalized: 'blue',
      count: 2,
    });
  });

  it('returns null when nobody answered', () => {
    expect(majorityVote([null, null])).toBeNull();
    expect(majorityVote([])).toBeNull();
  });
});
