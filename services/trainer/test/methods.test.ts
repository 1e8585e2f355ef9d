import { commonV1 } from '@mstar/contracts';
import { createInProcessBus } from '@mstar/events';
import { deriveSeed } from '@mstar/metrics';
import { initWeights, paramSpecs, TINY_CONFIG, VISION_PREFIX, type Checkpoint } from '@mstar/models';
import { ParamLayout } from '@mstar/optim';
import { pretrainVision, sft, sftExamples, warmup, type SftOptions } from '@mstar/recipes';
import { createInMemoryRunStore } from '@mstar/stores';
import { decodeCheckpoint } from '@mstar/training';
import { createWorldTokenizer } from '@mstar/world';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createRunRecord,
  goldRecords,
  publishEvent,
  readCheckpoint,
  recordingBus,
  runStarted,
  sameWeights,
  startTestTrainer,
  tempArtifacts,
  tinyPool,
  tinySpec,
  until,
  writeDataset,
  type TempArtifacts,
  type TestTrainer,
} from './fixture.js';

const POLICY = commonV1.CheckpointKind.POLICY;
const layout = new ParamLayout(paramSpecs(TINY_CONFIG, 'policy').map((s) => [s.name, s.shape] as const));
const optimizerSteps = (ckpt: Checkpoint): number => decodeCheckpoint(ckpt.optimizerState!, layout).optimizer.steps;

let artifacts: TempArtifacts;
let service: TestTrainer;
const runStore = createInMemoryRunStore();
const recorded = recordingBus(createInProcessBus());
const pool = tinyPool();

beforeAll(async () => {
  artifacts = await tempArtifacts();
  service = await startTestTrainer({ bus: recorded.bus, runStore, artifacts: artifacts.store });
});
afterAll(async () => {
  await service.close();
  await recorded.bus.close();
  await artifacts.cleanup();
});

/** Warm-up, then iterations 1 and 2 on 12 gold records each; the run's v0, v1, v2. */
async function trainRun(runId: string, method: string, overrides: Readonly<Record<string, string>> = {}): Promise<{ checkpoints: commonV1.Checkpoint[]; v: Checkpoint[] }> {
  const spec = tinySpec({ training_method: method, ...overrides });
  await createRunRecord(runStore, runId, spec);
  const ofRun = (): commonV1.Checkpoint[] => recorded.checkpoints().filter((c) => c.ref?.runId === runId);
  await publishEvent(recorded.bus, runId, runStarted(spec));
  for (const [iteration, from] of [
    [1, 24],
    [2, 36],
  ] as const) {
    await until(() => ofRun().length === iteration, 60_000, `policy v${iteration - 1} of ${runId}`);
    await publishEvent(recorded.bus, runId, await writeDataset(artifacts.store, runId, iteration, goldRecords(pool, from, from + 12)));
  }
  await until(() => ofRun().length === 3, 60_000, `policy v2 of ${runId}`);
  const checkpoints = ofRun();
  const v = await Promise.all(checkpoints.map((c) => readCheckpoint(artifacts.store, c.artifactPrefix, 'policy')));
  return { checkpoints, v };
}

/** Iteration i (1 or 2) trained here, in this thread, from the given start: what the service must have computed. */
async function expectedIteration(iteration: 1 | 2, start: Pick<SftOptions, 'initialWeights' | 'resume'>) {
  const spec = tinySpec();
  const from = iteration === 1 ? 24 : 36;
  return sft({
    config: TINY_CONFIG,
    examples: sftExamples(pool.slice(from, from + 12), createWorldTokenizer(), TINY_CONFIG),
    epochs: 1,
    batchSize: 4,
    optimizer: { schedule: { kind: 'constant', lr: 0.002 }, weightDecay: 0.01, clipNorm: 1 },
    seed: deriveSeed(spec.seed, 'train', iteration),
    runtime: { kind: 'session', intraOpThreads: 1 },
    ...start,
  });
}

const ref = (runId: string, version: number): commonV1.CheckpointRef => ({ runId, kind: POLICY, version });

describe('training methods', () => {
  test('CONTINUOUS: v2 continues v1 with the optimizer saved with it (moments, step count, schedule)', async () => {
    const { checkpoints, v } = await trainRun('run-continuous', 'CONTINUOUS');
    // Iteration 1 creates the optimizer (3 steps), iteration 2 continues it (3 more).
    expect(checkpoints.map((c) => [c.ref?.version, c.parent?.version, c.optimizerStep])).toEqual([
      [0, undefined, 3],
      [1, 0, 3],
      [2, 1, 6],
    ]);
    expect(optimizerSteps(v[1]!)).toBe(3);
    expect(optimizerSteps(v[2]!)).toBe(6);
    expect(checkpoints[2]!.parent).toEqual(ref('run-continuous', 1));
    const expected = await expectedIteration(2, { resume: v[1]!.optimizerState! });
    expect(expected.optimizerStep).toBe(6);
    expect(sameWeights(v[2]!.weights, expected.weights)).toBe(true);
    // A fresh optimizer from the same weights ends elsewhere: the carried moments matter.
    expect(sameWeights(v[2]!.weights, (await expectedIteration(2, { initialWeights: v[1]!.weights })).weights)).toBe(false);
  }, 120_000);

  test('CONTINUOUS with optimizer.continue_warmup: v1 continues the warm-up\'s optimizer, v2 continues v1\'s', async () => {
    const optimizer = '{ learning_rate: 0.002, schedule: CONSTANT, weight_decay: 0.01, grad_clip: 1, batch_size: 4, epochs_per_iteration: 1, continue_warmup: true }';
    const { checkpoints, v } = await trainRun('run-continue-warmup', 'CONTINUOUS', { optimizer });
    // The warm-up's 3 steps, then 3 more in each iteration on the same optimizer.
    expect(checkpoints.map((c) => [c.ref?.version, c.parent?.version, c.optimizerStep])).toEqual([
      [0, undefined, 3],
      [1, 0, 6],
      [2, 1, 9],
    ]);
    expect(optimizerSteps(v[1]!)).toBe(6);
    const v1 = await expectedIteration(1, { resume: v[0]!.optimizerState! });
    expect(sameWeights(v[1]!.weights, v1.weights)).toBe(true);
    // The warm-up's schedule (cosine to 3e-4 over its 3 steps), not spec.optimizer's constant 2e-3.
    expect(v1.lastLr).toBeCloseTo(3e-4, 12);
    expect(sameWeights(v[1]!.weights, (await expectedIteration(1, { initialWeights: v[0]!.weights })).weights)).toBe(false);
    expect(sameWeights(v[2]!.weights, (await expectedIteration(2, { resume: v[1]!.optimizerState! })).weights)).toBe(true);
  }, 120_000);

  test('RESTART_FROM_LAST: v2 starts from v1 with a fresh optimizer', async () => {
    const { checkpoints, v } = await trainRun('run-restart-last', 'RESTART_FROM_LAST');
    expect(checkpoints.map((c) => [c.ref?.version, c.parent?.version, c.optimizerStep])).toEqual([
      [0, undefined, 3],
      [1, 0, 3],
      [2, 1, 3],
    ]);
    expect(optimizerSteps(v[2]!)).toBe(3);
    expect(sameWeights(v[2]!.weights, (await expectedIteration(2, { initialWeights: v[1]!.weights })).weights)).toBe(true);
  }, 120_000);

  test('RESTART_FROM_INITIAL: v2 starts from v0 with a fresh optimizer', async () => {
    const { checkpoints, v } = await trainRun('run-restart-initial', 'RESTART_FROM_INITIAL');
    expect(checkpoints.map((c) => [c.ref?.version, c.parent?.version, c.optimizerStep])).toEqual([
      [0, undefined, 3],
      [1, 0, 3],
      [2, 0, 3],
    ]);
    expect(checkpoints[2]!.parent).toEqual(ref('run-restart-initial', 0));
    expect(optimizerSteps(v[2]!)).toBe(3);
    expect(sameWeights(v[2]!.weights, (await expectedIteration(2, { initialWeights: v[0]!.weights })).weights)).toBe(true);
    expect(sameWeights(v[2]!.weights, (await expectedIteration(2, { initialWeights: v[1]!.weights })).weights)).toBe(false);
    // Same seed, same warm-up: every run's v0 is the same policy.
    const other = await readCheckpoint(artifacts.store, 'runs/run-continuous/checkpoints/policy/v0', 'policy');
    expect(sameWeights(other.weights, v[0]!.weights)).toBe(true);
  }, 120_000);

  test('vision_pretraining_steps: v0 is the warm-up SFT of a policy whose vision tower was pretrained first', async () => {
    const runId = 'run-vision';
    const spec = tinySpec({ warmup: '{ examples: 24, epochs: 1, learning_rate: 0.003, batch_size: 8, vision_pretraining_steps: 4 }' });
    await createRunRecord(runStore, runId, spec);
    await publishEvent(recorded.bus, runId, runStarted(spec));
    await until(() => recorded.checkpoints().some((c) => c.ref?.runId === runId), 60_000, `v0 of ${runId}`);
    const v0 = await readCheckpoint(artifacts.store, `runs/${runId}/checkpoints/policy/v0`, 'policy');
    const runtime = { kind: 'session', intraOpThreads: 1 } as const;
    const vision = await pretrainVision({
      config: TINY_CONFIG,
      steps: 4,
      seed: deriveSeed(spec.seed, 'train', 'vision'),
      initialWeights: initWeights(TINY_CONFIG, 'policy', deriveSeed(spec.seed, 'init', 'policy')),
      runtime,
    });
    const expected = await warmup({
      config: TINY_CONFIG,
      examples: sftExamples(pool.slice(0, 24), createWorldTokenizer(), TINY_CONFIG),
      epochs: 1,
      batchSize: 8,
      lr: 0.003,
      seed: deriveSeed(spec.seed, 'train', 0),
      initialWeights: vision.weights,
      runtime,
    });
    expect(sameWeights(v0.weights, expected.weights)).toBe(true);
    const plain = await readCheckpoint(artifacts.store, 'runs/run-continuous/checkpoints/policy/v0', 'policy');
    const patch = `${VISION_PREFIX}embeddings.patch_embedding.weight`;
    expect(sameWeights(new Map([[patch, v0.weights.get(patch)!]]), new Map([[patch, plain.weights.get(patch)!]]))).toBe(false);
  }, 120_000);
});
