import { runV1 } from '@mstar/contracts';
import { describe, expect, it } from 'vitest';
import { TINY_CONFIG, type ModelWeights } from '@mstar/models';
import { createWorldTokenizer } from '@mstar/world';
import { RecipeConfigError, relativeWeightChange, retrainSpread, runItems, sft, sftExamples } from '../src/index.js';

const tokenizer = createWorldTokenizer();
const pool = runItems({ poolSize: 24, validationSize: 1, inDomainTestSize: 0, outOfDomainTestSize: 0, worldSeed: 2, chainStyle: runV1.ChainStyle.PLAIN, answerStyle: runV1.AnswerStyle.SHORT }, 'pool');
const first = sftExamples(pool.slice(0, 16), tokenizer, TINY_CONFIG);
const second = sftExamples(pool.slice(16, 24), tokenizer, TINY_CONFIG);
const runtime = { kind: 'session', intraOpThreads: 1 } as const;
/** v(i-1) of a run: weights and the optimizer saved with them. */
const startRun = () => sft({ config: TINY_CONFIG, examples: first, epochs: 1, batchSize: 4, optimizer: { schedule: { kind: 'constant', lr: 1e-3 } }, seed: 3, runtime });
const sumOf = (weights: ModelWeights) => [...weights.values()].reduce((s, w) => s + w.reduce((a, b) => a + b, 0), 0);

describe('retrainSpread', () => {
  it('trains each order as the trainer continues an iteration, and reports how far it moved the policy and its measure', async () => {
    const start = await startRun();
    const measured: ModelWeights[] = [];
    const accuracies = [42, 44, 41]; // the start, then each order
    const measure = (weights: ModelWeights) => Promise.resolve(accuracies[measured.push(weights) - 1]!);
    const spread = await retrainSpread({
      config: TINY_CONFIG,
      weights: start.weights,
      optimizerState: start.optimizerState,
      examples: second,
      epochs: 2,
      batchSize: 4,
      orders: [
        { order: 'run', seed: 11 },
        { order: '2', seed: 2 },
      ],
      measure,
      runtime,
    });
    expect(measured[0]).toBe(start.weights);
    const direct = await sft({ config: TINY_CONFIG, examples: second, epochs: 2, batchSize: 4, optimizer: { schedule: { kind: 'constant', lr: 0 } }, seed: 11, resume: start.optimizerState, runtime });
    for (const [name, w] of direct.weights) expect(measured[1]!.get(name), name).toEqual(w);
    expect(measured[2]!.get('model.embed_tokens.weight')).not.toEqual(measured[1]!.get('model.embed_tokens.weight'));
    expect(spread.start).toBe(42);
    expect(spread.runs.map((r) => [r.order, r.seed, r.steps, r.lastLr, r.accuracy, r.change])).toEqual([
      ['run', 11, 4, 1e-3, 44, 2],
      ['2', 2, 4, 1e-3, 41, -1],
    ]);
    expect(spread.runs[0]!.relativeWeightChange).toBeCloseTo(relativeWeightChange(start.weights, direct.weights), 12);
    expect(spread.runs[0]!.relativeWeightChange).toBeGreaterThan(0);
    expect(spread.changeMean).toBeCloseTo(0.5, 12);
    expect(spread.changeStd).toBeCloseTo(Math.sqrt(4.5), 12);
  }, 60_000);

  it('with a fresh AdamW at learning rate 0 leaves the policy where it was', async () => {
    const start = await startRun();
    const spread = await retrainSpread({
      config: TINY_CONFIG,
      weights: start.weights,
      freshLr: 0,
      examples: second,
      epochs: 1,
      batchSize: 4,
      orders: [{ order: '1', seed: 1 }],
      measure: (weights) => Promise.resolve(sumOf(weights)),
      runtime,
    });
    expect(spread.runs[0]!.relativeWeightChange).toBe(0);
    expect(spread.runs[0]!.change).toBe(0);
    expect(spread.changeStd).toBe(0);
  }, 60_000);

  it('refuses a start it cannot continue, a bad rate, no orders or a bad seed, and weights that do not match', async () => {
    const start = await startRun();
    const base = { config: TINY_CONFIG, weights: start.weights, examples: second, epochs: 1, batchSize: 4, measure: () => Promise.resolve(0), runtime };
    await expect(retrainSpread({ ...base, orders: [{ order: '1', seed: 1 }] })).rejects.toThrow(RecipeConfigError);
    await expect(retrainSpread({ ...base, freshLr: Number.NaN, orders: [{ order: '1', seed: 1 }] })).rejects.toThrow(/freshLr must be a finite learning rate/);
    await expect(retrainSpread({ ...base, freshLr: 1e-4, orders: [] })).rejects.toThrow(/at least one data order/);
    await expect(retrainSpread({ ...base, freshLr: 1e-4, orders: [{ order: 'x', seed: Number('x') }] })).rejects.toThrow(/order x: the seed must be an integer/);
    const missing = new Map([...start.weights].slice(1));
    expect(() => relativeWeightChange(start.weights, missing)).toThrow(/is missing or has another size/);
  }, 60_000);
});
