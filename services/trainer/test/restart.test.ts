import { createInProcessBus } from '@mstar/events';
import { createInMemoryRunStore } from '@mstar/stores';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TrainerProgress } from '../src/index.js';
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

let artifacts: TempArtifacts;
const runStore = createInMemoryRunStore();
const recorded = recordingBus(createInProcessBus());
const pool = tinyPool();
// 24 records, batch 4, 5 epochs: 30 steps in iteration 1.
const spec = tinySpec({ optimizer: '{ learning_rate: 0.002, schedule: CONSTANT, weight_decay: 0.01, grad_clip: 1, batch_size: 4, epochs_per_iteration: 5 }' });
const progress: TrainerProgress[] = [];
const services: TestTrainer[] = [];

beforeAll(async () => {
  artifacts = await tempArtifacts();
});
afterAll(async () => {
  for (const s of services) await s.close();
  await recorded.bus.close();
  await artifacts.cleanup();
});

async function start(onProgress?: (e: TrainerProgress) => void): Promise<TestTrainer> {
  const service = await startTestTrainer({ bus: recorded.bus, runStore, artifacts: artifacts.store, onProgress: (e) => (progress.push(e), onProgress?.(e)) });
  services.push(service);
  return service;
}

const published = (runId: string, version: number): boolean => recorded.checkpoints().some((c) => c.ref?.runId === runId && c.ref.version === version);

/** Warm-up and iteration 1 of `runId` (the same spec, hence the same data and seeds, for every run). */
async function startRun(runId: string): Promise<void> {
  await createRunRecord(runStore, runId, spec);
  await publishEvent(recorded.bus, runId, runStarted(spec));
  await until(() => published(runId, 0), 60_000, `v0 of ${runId}`);
  await publishEvent(recorded.bus, runId, await writeDataset(artifacts.store, runId, 1, goldRecords(pool, 24, 48)));
}

test('an iteration interrupted mid-way (and its partial files) is redone from scratch to bit-identical weights', async () => {
  const first = await start();
  await startRun('run-straight');
  await until(() => published('run-straight', 1), 60_000, 'v1 of run-straight');

  // The same run again, stopped (SIGTERM path) after 4 of its 30 steps.
  let stopping: Promise<void> | undefined;
  await first.close();
  const second = await start((e) => {
    if (e.runId === 'run-redo' && e.iteration === 1 && e.step === 4) stopping ??= second.close();
  });
  await startRun('run-redo');
  await until(() => stopping !== undefined, 60_000, 'the stop');
  await stopping;
  const interrupted = progress.filter((p) => p.runId === 'run-redo' && p.iteration === 1);
  expect(interrupted.map((p) => p.step)).toEqual([1, 2, 3, 4]);
  expect(second.trainer.consumerStats()['trainer-datasetReady']).toMatchObject({ acked: 0, handlerErrors: 1 });
  expect(published('run-redo', 1)).toBe(false);
  // What a crash in the middle of writing the checkpoint would leave: files, no COMPLETE marker.
  const prefix = 'runs/run-redo/checkpoints/policy/v1';
  await artifacts.store.put(`${prefix}/model.safetensors`, new Uint8Array([1, 2, 3]));
  await artifacts.store.put(`${prefix}/checkpoint.json`, new TextEncoder().encode('{"broken'));

  // A new process: the unacked DatasetReady comes back and the iteration starts over.
  progress.length = 0;
  const third = await start();
  await until(() => published('run-redo', 1), 60_000, 'v1 of run-redo');
  const redone = progress.filter((p) => p.runId === 'run-redo' && p.iteration === 1);
  expect(redone.map((p) => p.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  expect(third.trainer.consumerStats()['trainer-datasetReady']).toMatchObject({ acked: 1, handlerErrors: 0, redelivered: 1 });

  const straight = await readCheckpoint(artifacts.store, 'runs/run-straight/checkpoints/policy/v1', 'policy');
  const redo = await readCheckpoint(artifacts.store, prefix, 'policy');
  expect(sameWeights(redo.weights, straight.weights)).toBe(true);
  expect(Buffer.from(redo.optimizerState!).equals(Buffer.from(straight.optimizerState!))).toBe(true);
  const checkpoint = recorded.checkpoints().find((c) => c.ref?.runId === 'run-redo' && c.ref.version === 1)!;
  expect(checkpoint).toMatchObject({ trainingExamples: 24, optimizerStep: 30 });
}, 150_000);
