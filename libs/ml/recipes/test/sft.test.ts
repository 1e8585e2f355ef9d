import { runV1 } from '@mstar/contracts';
import { describe, expect, it } from 'vitest';
import { CancelledError } from '@mstar/errors';
import { numImageTokens, TINY_CONFIG } from '@mstar/models';
import { learningRate } from '@mstar/optim';
import type { LrSchedule } from '@mstar/optim';
import { createWorldTokenizer } from '@mstar/world';
import { RecipeConfigError, runItems, sft, sftExamples } from '../src/index.js';
import type { SftOptions, SftProgress } from '../src/index.js';

const tokenizer = createWorldTokenizer();
const pool = runItems({ poolSize: 32, validationSize: 1, inDomainTestSize: 0, outOfDomainTestSize: 0, worldSeed: 2, chainStyle: runV1.ChainStyle.PLAIN, answerStyle: runV1.AnswerStyle.SHORT }, 'pool');
const first = sftExamples(pool.slice(0, 16), tokenizer, TINY_CONFIG);
const second = sftExamples(pool.slice(16, 32), tokenizer, TINY_CONFIG);
const schedule: LrSchedule = { kind: 'linear-warmup', lr: 1e-3, warmupSteps: 10 };

function run(options: Partial<SftOptions>, progress?: SftProgress[]) {
  return sft({
    config: TINY_CONFIG,
    examples: first,
    epochs: 1,
    batchSize: 4,
    optimizer: { schedule },
    seed: 3,
    runtime: { kind: 'session', intraOpThreads: 1 },
    ...(progress !== undefined ? { onProgress: (e: SftProgress) => progress.push(e) } : {}),
    ...options,
  });
}

describe('sft', () => {
  it('resuming continues the optimizer: step count and schedule position; fresh weights restart the schedule', async () => {
    const a = await run({});
    expect([a.steps, a.optimizerStep, a.examplesSeen]).toEqual([4, 4, 16]);
    const resumed: SftProgress[] = [];
    const b = await run({ examples: second, resume: a.optimizerState }, resumed);
    expect([b.steps, b.optimizerStep]).toEqual([4, 8]);
    expect(resumed.map((e) => [e.step, e.optimizerStep])).toEqual([
      [1, 5],
      [2, 6],
      [3, 7],
      [4, 8],
    ]);
    // The saved schedule goes on from step 4 (0-based): 5e-4 ... 8e-4 of the ramp.
    expect(resumed.map((e) => e.lr)).toEqual([4, 5, 6, 7].map((s) => learningRate(schedule, s)));
    const fresh: SftProgress[] = [];
    const c = await run({ examples: second, initialWeights: a.weights }, fresh);
    expect(c.optimizerStep).toBe(4);
    expect(fresh.map((e) => e.lr)).toEqual([0, 1, 2, 3].map((s) => learningRate(schedule, s)));
  }, 60_000);

  it('takes no step on an empty dataset and returns its start', async () => {
    const a = await run({});
    const b = await run({ examples: [], resume: a.optimizerState });
    expect([b.steps, b.optimizerStep, b.examplesSeen]).toEqual([0, 4, 0]);
    expect(Buffer.from(b.optimizerState).equals(Buffer.from(a.optimizerState))).toBe(true);
  }, 60_000);

  it('refuses contradictory or impossible settings, and stops when aborted', async () => {
    const a = await run({ epochs: 1, examples: first.slice(0, 4) });
    await expect(run({ initialWeights: a.weights, resume: a.optimizerState })).rejects.toThrow(RecipeConfigError);
    await expect(run({ batchSize: 0 })).rejects.toThrow(/batchSize/);
    const long = { ...first[0]!, response: Array.from({ length: 200 }, () => 5) };
    const positions = long.prompt.length + numImageTokens(TINY_CONFIG) - 1 + 200;
    await expect(run({ examples: [first[1]!, long] })).rejects.toThrow(`SFT example 2 takes ${positions} positions, more than the model's 128`);
    const controller = new AbortController();
    const progress: SftProgress[] = [];
    const aborted = run({ epochs: 10, signal: controller.signal, onProgress: (e) => (progress.push(e), e.step === 2 && controller.abort()) });
    await expect(aborted).rejects.toThrow(CancelledError);
    expect(progress.length).toBe(2);
  }, 60_000);
});
