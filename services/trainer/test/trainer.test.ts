import { status } from '@grpc/grpc-js';
import { commonV1 } from '@mstar/contracts';
import { withAnswerHint } from '@mstar/cot';
import { createInProcessBus } from '@mstar/events';
import { CHECKPOINT_FILES, paramSpecs, TINY_CONFIG } from '@mstar/models';
import { createInMemoryRunStore } from '@mstar/stores';
import { createMetrics } from '@mstar/telemetry';
import { AdamW, ParamLayout } from '@mstar/optim';
import { decodeCheckpoint } from '@mstar/training';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { warmupItems, type TrainerProgress } from '../src/index.js';
import {
  createRunRecord,
  failure,
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

const RUN = 'run-basic';
const { POLICY, PRM, UNSPECIFIED } = commonV1.CheckpointKind;

let artifacts: TempArtifacts;
let service: TestTrainer;
const runStore = createInMemoryRunStore();
const recorded = recordingBus(createInProcessBus());
const progress: TrainerProgress[] = [];
const metrics = createMetrics({ service: 'trainer-test', defaultMetrics: false });
const spec = tinySpec();

beforeAll(async () => {
  artifacts = await tempArtifacts();
  await createRunRecord(runStore, RUN, spec);
  service = await startTestTrainer({ bus: recorded.bus, runStore, artifacts: artifacts.store, metrics, onProgress: (e) => progress.push(e) });
});
afterAll(async () => {
  await service.close();
  await recorded.bus.close();
  await artifacts.cleanup();
});

describe('warm-up', () => {
  test('RunStarted trains policy v0, writes its files (COMPLETE last) and publishes it', async () => {
    await publishEvent(recorded.bus, RUN, runStarted(spec));
    await until(() => recorded.checkpoints().length === 1, 60_000, 'CheckpointPublished(policy v0)');
    const published = recorded.byTrainer()[0]!;
    expect(published.msgId).toBe(`run/${RUN}/checkpoint/policy/0`);
    expect(published.subject).toBe(`mstar.events.${RUN}.checkpoint_published`);
    expect(published.event?.source).toBe('trainer');
    const checkpoint = recorded.checkpoints()[0]!;
    const prefix = `runs/${RUN}/checkpoints/policy/v0`;
    // 24 examples in batches of 8, one epoch.
    expect(checkpoint).toMatchObject({ ref: { runId: RUN, kind: POLICY, version: 0 }, iteration: 0, artifactPrefix: prefix, trainingExamples: 24, optimizerStep: 3, parent: undefined });

    const keys = await artifacts.store.list(`${prefix}/`);
    for (const file of [CHECKPOINT_FILES.weights, CHECKPOINT_FILES.optimizer, CHECKPOINT_FILES.config, CHECKPOINT_FILES.tokenizer, CHECKPOINT_FILES.tokenizerConfig, 'onnx/decoder_model_merged.onnx', 'checkpoint.json', 'COMPLETE']) {
      expect(keys).toContain(`${prefix}/${file}`);
    }
    const meta = await artifacts.store.getJson<Record<string, unknown>>(`${prefix}/checkpoint.json`);
    expect(meta).toMatchObject({ kind: 'policy', version: 0, iteration: 0, training_examples: 24, parent: null, optimizer_step: 3, stage: 'warmup', steps: 3, examples_seen: 24 });
    expect(meta['created_at']).toBe(checkpoint.createdAt?.toISOString());
    // The last step's rate of the warm-up schedule (ramp, then cosine from 0.003 towards 0.0003),
    // and a loss below the uniform ln(380) = 5.94 after 3 steps.
    expect(meta['learning_rate']).toBeCloseTo(0.00165, 9);
    expect(meta['loss']).toBeLessThan(5.94);

    const ckpt = await readCheckpoint(artifacts.store, prefix, 'policy');
    expect(ckpt.config).toEqual(TINY_CONFIG);
    // optimizer.bin is the trainer's state: AdamW after 3 steps at the constant rate.
    const layout = new ParamLayout(paramSpecs(TINY_CONFIG, 'policy').map((s) => [s.name, s.shape] as const));
    const state = decodeCheckpoint(ckpt.optimizerState!, layout);
    expect(state.optimizer).toBeInstanceOf(AdamW);
    expect(state.optimizer.steps).toBe(3);
    expect(state.optimizer.schedule).toEqual({ kind: 'warmup-cosine', lr: 0.003, warmupSteps: 1, totalSteps: 3, minLr: 0.003 * 0.1 });
    expect(state.clipNorm).toBe(1);

    expect(progress.map((p) => [p.stage, p.step, p.totalSteps])).toEqual([
      ['warmup', 1, 3],
      ['warmup', 2, 3],
      ['warmup', 3, 3],
    ]);
    expect(progress.every((p) => p.runId === RUN && p.iteration === 0 && Number.isFinite(p.loss) && p.etaMs >= 0)).toBe(true);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/mstar_trainer_steps_total\{stage="warmup",service="trainer-test"\} 3\n/);
    expect(text).toMatch(/mstar_trainer_examples_total\{stage="warmup",service="trainer-test"\} 24\n/);
    expect(text).toMatch(/mstar_trainer_checkpoints_published_total\{kind="policy",service="trainer-test"\} 1\n/);
    expect(text).toMatch(/mstar_trainer_stage_seconds_count\{service="trainer-test",stage="warmup"\} 1\n/);
  }, 90_000);

  test('GetTrainingStatus, ListCheckpoints and GetCheckpoint describe it', async () => {
    const state = await service.client.getTrainingStatus(RUN);
    expect(state).toMatchObject({ runId: RUN, stage: commonV1.Stage.WARMUP, iteration: 0, training: false, step: 3, examplesSeen: 24 });
    expect(state.learningRate).toBeCloseTo(0.00165, 9);
    expect(state.loss).toBeGreaterThan(0);
    const listed = await service.client.listCheckpoints(RUN);
    expect(listed).toEqual([recorded.checkpoints()[0]]);
    expect(await service.client.listCheckpoints(RUN, PRM)).toEqual([]);
    expect(await service.client.getCheckpoint({ runId: RUN, kind: POLICY, version: 0 })).toEqual(recorded.checkpoints()[0]);
  });

  test('the gRPC methods answer bad and unknown arguments with the right status', async () => {
    const c = service.client;
    for (const runId of ['', 'has space', 'a.b']) {
      const err = await failure(() => c.getTrainingStatus(runId));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/^run_id must be/);
      expect((await failure(() => c.listCheckpoints(runId))).code).toBe(status.INVALID_ARGUMENT);
    }
    const unknown = await failure(() => c.getTrainingStatus('run-unknown'));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toContain('run-unknown');
    expect((await failure(() => c.listCheckpoints('run-unknown'))).code).toBe(status.NOT_FOUND);
    const badKind = await failure(() => c.listCheckpoints(RUN, 7 as commonV1.CheckpointKind));
    expect(badKind.code).toBe(status.INVALID_ARGUMENT);
    expect(badKind.details).toMatch(/^kind must be/);

    const never = await failure(() => c.getCheckpoint({ runId: RUN, kind: POLICY, version: 5 }));
    expect(never.code).toBe(status.NOT_FOUND);
    expect(never.details).toContain('policy v5');
    expect((await failure(() => c.getCheckpoint({ runId: RUN, kind: PRM, version: 0 }))).code).toBe(status.NOT_FOUND);
    const noKind = await failure(() => c.getCheckpoint({ runId: RUN, kind: UNSPECIFIED, version: 0 }));
    expect(noKind.code).toBe(status.INVALID_ARGUMENT);
    expect(noKind.details).toMatch(/^ref\.kind/);
    const badRun = await failure(() => c.getCheckpoint({ runId: '', kind: POLICY, version: 0 }));
    expect(badRun.code).toBe(status.INVALID_ARGUMENT);
    expect(badRun.details).toMatch(/^ref\.run_id/);
  });
});

describe('iterations', () => {
  test('DatasetReady(1) trains v1 from v0; a redelivery after completion only re-publishes it', async () => {
    const pool = tinyPool();
    const dataset = await writeDataset(artifacts.store, RUN, 1, goldRecords(pool, 24, 36));
    const event = await publishEvent(recorded.bus, RUN, dataset);
    await until(() => recorded.checkpoints().length === 2, 60_000, 'CheckpointPublished(policy v1)');
    const v1 = recorded.checkpoints()[1]!;
    // 12 records, batch 4: 3 steps on a fresh optimizer (the warm-up's has other settings).
    expect(v1).toMatchObject({ ref: { runId: RUN, kind: POLICY, version: 1 }, iteration: 1, trainingExamples: 12, optimizerStep: 3, parent: { runId: RUN, kind: POLICY, version: 0 } });
    const state = await service.client.getTrainingStatus(RUN);
    expect(state).toMatchObject({ stage: commonV1.Stage.ITERATION, iteration: 1, training: false, step: 3, examplesSeen: 12, learningRate: 0.002 });

    const files = async (): Promise<string[]> => {
      const keys = await artifacts.store.list(`runs/${RUN}/checkpoints/policy/v1/`);
      return Promise.all(keys.map(async (k) => `${k}:${Buffer.from(await artifacts.store.get(k)).toString('base64').slice(0, 64)}`));
    };
    const before = await files();
    const stepsBefore = progress.length;
    const publishedBefore = recorded.byTrainer().length;
    // The same event again under another NATS message id: what a redelivery after a crash looks like to the handler.
    await publishEvent(recorded.bus, RUN, event.payload!, 'redelivery-1');
    await until(() => recorded.byTrainer().length === publishedBefore + 1, 30_000, 'the re-publication');
    const again = recorded.byTrainer().at(-1)!;
    expect(again.msgId).toBe(`run/${RUN}/checkpoint/policy/1`);
    expect(again.duplicate).toBe(true);
    expect(again.event?.payload).toEqual({ $case: 'checkpointPublished', value: { checkpoint: v1 } });
    expect(progress.length).toBe(stepsBefore);
    expect(await files()).toEqual(before);
    expect(service.trainer.consumerStats()['trainer-datasetReady']).toMatchObject({ delivered: 2, acked: 2, handlerErrors: 0 });
    expect(await service.client.listCheckpoints(RUN, POLICY)).toEqual([recorded.checkpoints()[0], v1]);
  }, 90_000);

  test('an empty dataset takes no step: v2 is v1 and its continued optimizer, unchanged', async () => {
    await publishEvent(recorded.bus, RUN, await writeDataset(artifacts.store, RUN, 2, []));
    const v2Event = () => recorded.checkpoints().find((c) => c.ref?.version === 2);
    await until(() => v2Event() !== undefined, 60_000, 'CheckpointPublished(policy v2)');
    expect(v2Event()).toMatchObject({ ref: { version: 2 }, trainingExamples: 0, optimizerStep: 3, parent: { version: 1 } });
    const v1 = await readCheckpoint(artifacts.store, `runs/${RUN}/checkpoints/policy/v1`, 'policy');
    const v2 = await readCheckpoint(artifacts.store, `runs/${RUN}/checkpoints/policy/v2`, 'policy');
    expect(sameWeights(v2.weights, v1.weights)).toBe(true);
    expect(Buffer.from(v2.optimizerState!).equals(Buffer.from(v1.optimizerState!))).toBe(true);
  }, 60_000);
});

describe('a hinted warm-up (warmup.hinted)', () => {
  test('warmupItems adds each gold item again under its question hinted by its gold answer', () => {
    const pool = tinyPool();
    expect(warmupItems(pool, { examples: 3, hinted: false })).toEqual(pool.slice(0, 3));
    const items = warmupItems(pool, { examples: 3, hinted: true });
    expect(items.slice(0, 3)).toEqual(pool.slice(0, 3));
    expect(items.slice(3)).toEqual(pool.slice(0, 3).map((item) => ({ ...item, question: withAnswerHint(item.question, item.answer) })));
  });

  test('RunStarted trains v0 on the gold examples and their hinted copies: twice the examples and steps', async () => {
    const runId = 'run-hinted';
    const hinted = tinySpec({ warmup: '{ examples: 24, epochs: 1, learning_rate: 0.003, batch_size: 8, hinted: true }' });
    await createRunRecord(runStore, runId, hinted);
    await publishEvent(recorded.bus, runId, runStarted(hinted));
    const v0 = () => recorded.checkpoints().find((c) => c.ref?.runId === runId);
    await until(() => v0() !== undefined, 60_000, `CheckpointPublished(policy v0 of ${runId})`);
    expect(v0()).toMatchObject({ ref: { kind: POLICY, version: 0 }, iteration: 0, trainingExamples: 48, optimizerStep: 6 });
  }, 90_000);
});
