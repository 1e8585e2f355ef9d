import { eventsV1, runV1 } from '@mstar/contracts';
import { splitSteps } from '@mstar/cot';
import { createInProcessBus, parseDeadLetter, type EventMeta } from '@mstar/events';
import { encodePrmData } from '@mstar/recipes';
import { getRun, updateRun } from '@mstar/runs';
import { runArtifacts } from '@mstar/runspec';
import { createInMemoryRunStore } from '@mstar/stores';
import { createMetrics } from '@mstar/telemetry';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TrainerProgress } from '../src/index.js';
import {
  createRunRecord,
  goldRecords,
  publishEvent,
  recordingBus,
  runStarted,
  startTestTrainer,
  tempArtifacts,
  tinyPool,
  tinySpec,
  until,
  writeDataset,
  type TempArtifacts,
  type TestTrainer,
} from './fixture.js';

let artifacts: TempArtifacts;
let service: TestTrainer;
const runStore = createInMemoryRunStore();
const recorded = recordingBus(createInProcessBus());
const metrics = createMetrics({ service: 'trainer-test', defaultMetrics: false });
const progress: TrainerProgress[] = [];
const pool = tinyPool();

beforeAll(async () => {
  artifacts = await tempArtifacts();
  service = await startTestTrainer({ bus: recorded.bus, runStore, artifacts: artifacts.store, metrics, onProgress: (e) => progress.push(e) });
});
afterAll(async () => {
  await service.close();
  await recorded.bus.close();
  await artifacts.cleanup();
});

const stats = (kind: string) => service.trainer.consumerStats()[`trainer-${kind}`]!;

/** Trains run `runId`'s warm-up and waits for its v0. */
async function warmedUp(runId: string, spec = tinySpec()): Promise<void> {
  await createRunRecord(runStore, runId, spec);
  await publishEvent(recorded.bus, runId, runStarted(spec));
  await until(() => recorded.checkpoints().some((c) => c.ref?.runId === runId), 60_000, `v0 of ${runId}`);
}

async function failedWith(runId: string): Promise<string> {
  await until(async () => (await getRun(runStore, runId)).state === runV1.RunState.FAILED, 60_000, `run ${runId} FAILED`);
  const run = await getRun(runStore, runId);
  expect(run.finishedAt).toBeInstanceOf(Date);
  return run.errorMessage;
}

describe('bad events and bad inputs', () => {
  test('an undecodable event is dead-lettered and counted, never retried', async () => {
    const dead: { reason: string; meta: EventMeta }[] = [];
    const deadLetters = await recorded.bus.consume({
      durable: 'test-dlq',
      subjects: recorded.bus.deadLetterSubject('trainer-datasetReady'),
      decode: (data) => data,
      handler: (_data, meta) => {
        dead.push({ reason: parseDeadLetter(meta.headers)?.reason ?? 'none', meta });
        return Promise.resolve();
      },
    });
    try {
      await recorded.bus.publish('mstar.events.run-x.dataset_ready', new Uint8Array([0xff, 0xff, 0xff, 0x01]), { msgId: 'garbage-1' });
      // Decodes, but carries no dataset: the trainer cannot act on it either (createEvent refuses to build it).
      const empty = eventsV1.Event.fromPartial({ eventId: 'no-dataset', runId: 'run-x', source: 'test', payload: { $case: 'datasetReady', value: {} } });
      await recorded.bus.publish('mstar.events.run-x.dataset_ready', eventsV1.Event.encode(empty).finish(), { msgId: 'no-dataset-1' });
      await until(() => stats('datasetReady').rejectedUndecodable === 2, 30_000, 'two rejections');
      await until(() => dead.length === 2, 30_000, 'two dead letters');
      expect(dead.map((d) => d.reason)).toEqual(['undecodable', 'undecodable']);
      expect(stats('datasetReady')).toMatchObject({ delivered: 2, handlerErrors: 0, acked: 0 });
      expect(await metrics.registry.metrics()).toMatch(/mstar_trainer_events_rejected_total\{kind="datasetReady",reason="undecodable",service="trainer-test"\} 2\n/);
    } finally {
      await deadLetters.close();
    }
  });

  test('a dataset naming a prompt outside the pool marks the run FAILED with the reason', async () => {
    await warmedUp('run-unknown-prompt');
    const records = [...goldRecords(pool, 24, 27), { promptId: 'train-99999', response: 'the answer is 4.\n\n# Answer\n\n4' }];
    await publishEvent(recorded.bus, 'run-unknown-prompt', await writeDataset(artifacts.store, 'run-unknown-prompt', 1, records));
    const message = await failedWith('run-unknown-prompt');
    expect(message).toContain('trainer (iteration 1)');
    expect(message).toContain(`${runArtifacts('run-unknown-prompt').dataset(1)}:4: prompt_id "train-99999" is not in the run's pool`);
    await until(() => stats('datasetReady').acked >= 1);
    expect(await artifacts.store.list('runs/run-unknown-prompt/checkpoints/policy/v1')).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(/mstar_trainer_runs_failed_total\{stage="iteration",service="trainer-test"\} 1\n/);
  }, 90_000);

  test('PRM data whose labels do not match the response steps marks the run FAILED', async () => {
    await warmedUp('run-bad-prm');
    const key = runArtifacts('run-bad-prm').prmData;
    const item = pool[0]!;
    const steps = splitSteps(item.response!).length;
    // One label too few cannot be placed on the steps.
    await artifacts.store.put(key, encodePrmData([{ promptId: item.id, response: item.response!, stepLabels: Array.from({ length: steps - 1 }, () => 1), correct: true }]));
    await publishEvent(recorded.bus, 'run-bad-prm', {
      $case: 'prmDataReady',
      value: { artifactKey: key, sourcePolicy: { runId: 'run-bad-prm', kind: 1, version: 0 }, prompts: 1, trajectories: 1, labelledSteps: 2, rollouts: 2, meanStepLabel: 0.75 },
    });
    const message = await failedWith('run-bad-prm');
    expect(message).toContain('trainer (prm)');
    expect(message).toContain(`trajectory 1 (${item.id}): ${steps - 1} step labels for a response with ${steps} steps`);
  }, 90_000);

  test('an invalid spec in RunStarted marks the run FAILED naming the setting', async () => {
    const spec = tinySpec();
    await createRunRecord(runStore, 'run-bad-spec', spec);
    await publishEvent(recorded.bus, 'run-bad-spec', runStarted({ ...spec, warmup: { ...spec.warmup, batchSize: 0 } }));
    const message = await failedWith('run-bad-spec');
    expect(message).toContain('warmup.batch_size');
  }, 60_000);
});

describe('cancel and ended runs', () => {
  test('cancelling a run stops its training after the step in flight; its later events are ignored', async () => {
    // 48 examples, batch 4, 20 epochs: 240 steps, far more than the test waits for.
    const spec = tinySpec({ warmup: '{ examples: 48, epochs: 20, learning_rate: 0.003, batch_size: 4 }' });
    await createRunRecord(runStore, 'run-cancel', spec);
    const acked = stats('runStarted').acked;
    await publishEvent(recorded.bus, 'run-cancel', runStarted(spec));
    await until(() => progress.some((p) => p.runId === 'run-cancel' && p.step >= 3), 60_000, 'three warm-up steps');
    const atCancel = progress.filter((p) => p.runId === 'run-cancel').length;
    await updateRun(runStore, 'run-cancel', (run) => ({ ...run, state: runV1.RunState.CANCELLED }));
    await until(() => stats('runStarted').acked === acked + 1, 30_000, 'the RunStarted ack');
    const steps = progress.filter((p) => p.runId === 'run-cancel').length;
    // The step in flight when the record changed finishes; no further one starts.
    expect(steps).toBeLessThanOrEqual(atCancel + 1);
    expect((await service.client.getTrainingStatus('run-cancel')).training).toBe(false);
    expect(await artifacts.store.exists('runs/run-cancel/checkpoints/policy/v0/COMPLETE')).toBe(false);
    expect(recorded.checkpoints().some((c) => c.ref?.runId === 'run-cancel')).toBe(false);

    const datasetAcks = stats('datasetReady').acked;
    await publishEvent(recorded.bus, 'run-cancel', await writeDataset(artifacts.store, 'run-cancel', 1, goldRecords(pool, 0, 4)));
    await until(() => stats('datasetReady').acked === datasetAcks + 1, 30_000, 'the DatasetReady ack');
    expect(progress.filter((p) => p.runId === 'run-cancel').length).toBe(steps);
    expect((await getRun(runStore, 'run-cancel')).state).toBe(runV1.RunState.CANCELLED);
  }, 90_000);

  test('events of a run without a record are acked and ignored', async () => {
    const acked = stats('runStarted').acked;
    await publishEvent(recorded.bus, 'run-nobody', runStarted(tinySpec()));
    await until(() => stats('runStarted').acked === acked + 1);
    expect(progress.some((p) => p.runId === 'run-nobody')).toBe(false);
    expect(await artifacts.store.list('runs/run-nobody/')).toEqual([]);
  });
});
