import { CancelledError } from '@mstar/errors';
import { ModelConfigError, PROJECTOR_PREFIX, REFERENCE_CONFIG, TINY_CONFIG, VISION_PREFIX, buildVisionPretrainingGraph, initWeights } from '@mstar/models';
import { describe, expect, it } from 'vitest';
import { RecipeConfigError, pretrainVision } from '../src/index.js';

describe('pretrainVision', () => {
  it('learns to classify the cells and changes only the vision tower and projector', async () => {
    const initial = initWeights(TINY_CONFIG, 'policy', 5);
    const losses: number[] = [];
    const result = await pretrainVision({ config: TINY_CONFIG, steps: 80, lr: 3e-3, seed: 2, initialWeights: initial, onProgress: (e) => losses.push(e.loss) });
    expect(result.steps).toBe(80);
    expect(losses).toHaveLength(80);
    // 51 classes: chance is ln 51 = 3.9; the empty cells alone are learned within a few steps.
    expect(result.firstLoss).toBeGreaterThan(3.5);
    expect(result.lastLoss).toBeLessThan(0.5 * result.firstLoss);
    expect([...result.weights.keys()].sort()).toEqual([...initial.keys()].sort());
    for (const [name, data] of result.weights) {
      const visual = name.startsWith(VISION_PREFIX) || name.startsWith(PROJECTOR_PREFIX);
      const same = data.every((x, i) => x === initial.get(name)![i]);
      if (!visual) expect(same, name).toBe(true);
      if (name.endsWith('patch_embedding.weight') || name.endsWith('linear_2.weight')) expect(same, name).toBe(false);
    }
  });

  it('rejects bad sizes and stops when cancelled', async () => {
    await expect(pretrainVision({ config: TINY_CONFIG, steps: 0, seed: 1 })).rejects.toThrow(RecipeConfigError);
    await expect(pretrainVision({ config: TINY_CONFIG, steps: 2, batchSize: 1.5, seed: 1 })).rejects.toThrow(/batchSize/);
    const wrongGrid = { ...REFERENCE_CONFIG, vision: { ...REFERENCE_CONFIG.vision, patchSize: 4 } };
    await expect(pretrainVision({ config: wrongGrid, steps: 2, seed: 1 })).rejects.toThrow(/64 tokens, the world 16 cells/);
    expect(() => buildVisionPretrainingGraph(TINY_CONFIG, 1)).toThrow(ModelConfigError);
    const controller = new AbortController();
    const run = pretrainVision({ config: TINY_CONFIG, steps: 50, seed: 1, signal: controller.signal, onProgress: (e) => e.step === 3 && controller.abort() });
    await expect(run).rejects.toThrow(CancelledError);
  });
});
