import { describe, expect, it } from 'vitest';
import { ModelInputError, TINY_CONFIG, buildPrmBatch, buildSftBatch, stepBoundaries, type ModelConfig } from '../src/index.js';

// 16x16 images with 8x8 patches: 4 image tokens, so the expected arrays stay readable.
const config: ModelConfig = { ...TINY_CONFIG, vision: { ...TINY_CONFIG.vision, imageSize: 16 } };
const nums = (a: ArrayLike<bigint | number>): number[] => Array.from(a, Number);

describe('training batches', () => {
  it('SFT: expanded prompt + response, next-token targets, loss on the response only (right padding)', () => {
    const b = buildSftBatch(
      [
        { prompt: [1, 4, 9], response: [20, 21, 2] },
        { prompt: [1, 4], response: [30, 2] },
      ],
      config,
    );
    expect([b.batch, b.seq]).toEqual([2, 9]);
    expect(nums(b.inputIds)).toEqual([1, 4, 4, 4, 4, 9, 20, 21, 2, 1, 4, 4, 4, 4, 30, 2, 0, 0]);
    expect(nums(b.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(nums(b.positionIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 1, 1]);
    expect(nums(b.targets)).toEqual([4, 4, 4, 4, 9, 20, 21, 2, 0, 4, 4, 4, 4, 30, 2, 0, 0, 0]);
    expect(nums(b.lossWeights)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]);
  });

  it('SFT with left padding shifts everything right', () => {
    const b = buildSftBatch([{ prompt: [1, 4], response: [30, 2] }, { prompt: [1, 4, 9, 9], response: [7] }], config, 'left');
    expect(b.seq).toBe(8);
    expect(nums(b.inputIds.subarray(0, 8))).toEqual([0, 1, 4, 4, 4, 4, 30, 2]);
    expect(nums(b.positionIds.subarray(0, 8))).toEqual([1, 0, 1, 2, 3, 4, 5, 6]);
    expect(nums(b.targets.subarray(0, 8))).toEqual([0, 4, 4, 4, 4, 30, 2, 0]);
    expect(nums(b.lossWeights.subarray(0, 8))).toEqual([0, 0, 0, 0, 0, 1, 1, 0]);
    // A one-token response is learned from the last prompt position.
    expect(nums(b.lossWeights.subarray(8))).toEqual([0, 0, 0, 0, 0, 0, 1, 0]);
  });

  it('step boundaries: every separator, and the last token', () => {
    expect(stepBoundaries([20, 5, 21, 5, 22, 2], 5)).toEqual([1, 3, 5]);
    expect(stepBoundaries([20, 5, 21], 5)).toEqual([1, 2]);
    expect(stepBoundaries([5], 5)).toEqual([0]);
    expect(stepBoundaries([], 5)).toEqual([]);
  });

  it('PRM: soft labels and weights at the step boundaries, with their model positions', () => {
    const b = buildPrmBatch(
      [
        { prompt: [1, 4], response: [20, 5, 21, 5, 22, 2], labels: [1, 0.5, 0] },
        { prompt: [1, 4, 9], response: [30, 5], labels: [0.25], weights: [3] },
      ],
      config,
      5,
      'left',
    );
    expect([b.batch, b.seq]).toEqual([2, 11]);
    expect(b.boundaries).toEqual([[6, 8, 10], [10]]);
    expect(nums(b.targets)).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.25]);
    expect(nums(b.lossWeights)).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    expect(nums(b.inputIds.subarray(11))).toEqual([0, 0, 0, 1, 4, 4, 4, 4, 9, 30, 5]);
  });

  it('refuses inconsistent examples', () => {
    expect(() => buildPrmBatch([{ prompt: [1, 4], response: [20, 5, 21], labels: [1] }], config, 5)).toThrow('example 0 has 1 labels for 2 step boundaries');
    expect(() => buildPrmBatch([{ prompt: [1, 4], response: [20], labels: [1.5] }], config, 5)).toThrow('label 0 = 1.5 is not in [0, 1]');
    expect(() => buildSftBatch([{ prompt: [1, 4, 4], response: [2] }], config)).toThrow(ModelInputError);
    expect(() => buildSftBatch([{ prompt: [1, 4], response: [] }], config)).toThrow('example 0 has an empty response');
    expect(() => buildSftBatch([], config)).toThrow('a batch needs at least one example');
  });
});
