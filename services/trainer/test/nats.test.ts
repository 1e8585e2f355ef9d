import { commonV1, EVENT_STREAM, EVENT_STREAM_SUBJECTS, eventsV1, eventSubjectFilter, runV1 } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { getRun } from '@mstar/runs';
import { createNatsRunStore, type RunStore } from '@mstar/stores';
import { startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TrainerProgress } from '../src/index.js';
import { createRunRecord, goldRecords, publishEvent, runStarted, startTestTrainer, tempArtifacts, tinyPool, tinySpec, until, writeDataset, type TempArtifacts, type TestTrainer } from './fixture.js';

const RUN = 'run-nats';
let server: NatsServerHandle;
let artifacts: TempArtifacts;
let runStore: RunStore;
const buses: EventBus[] = [];
const services: TestTrainer[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  artifacts = await tempArtifacts();
  runStore = await createNatsRunStore({ servers: server.url, bucket: 'mstar-runs-test' });
});
afterAll(async () => {
  for (const s of services) await s.close();
  for (const b of buses) await b.close();
  await runStore.close();
  await artifacts.cleanup();
  await server.stop();
});

async function bus(): Promise<EventBus> {
  const b = await createJetStreamBus({ servers: server.url, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] } });
  buses.push(b);
  return b;
}

async function start(onProgress?: (e: TrainerProgress) => void): Promise<TestTrainer> {
  const service = await startTestTrainer({ bus: await bus(), runStore, artifacts: artifacts.store, onProgress });
  services.push(service);
  return service;
}

test('over JetStream and the NATS KV run store: warm-up, then an iteration stopped mid-way and finished by the next process', async () => {
  const spec = tinySpec({ optimizer: '{ learning_rate: 0.002, schedule: CONSTANT, weight_decay: 0.01, grad_clip: 1, batch_size: 4, epochs_per_iteration: 5 }' });
  await createRunRecord(runStore, RUN, spec);
  const watcherBus = await bus();
  const seen: { msgId: string | undefined; checkpoint: commonV1.Checkpoint }[] = [];
  const watcher = await watcherBus.consume({
    durable: 'test-watch',
    subjects: eventSubjectFilter({ runId: RUN, kind: 'checkpointPublished' }),
    decode: (data) => eventsV1.Event.decode(data),
    handler: (event, meta) => {
      if (event.payload?.$case === 'checkpointPublished') seen.push({ msgId: meta.msgId, checkpoint: event.payload.value.checkpoint! });
      return Promise.resolve();
    },
  });

  let stopping: Promise<void> | undefined;
  const first = await start((e) => {
    if (e.iteration === 1 && e.step === 3) stopping ??= first.close();
  });
  await publishEvent(watcherBus, RUN, runStarted(spec));
  await until(() => seen.length === 1, 60_000, 'CheckpointPublished(policy v0) on JetStream');
  expect(seen[0]).toMatchObject({ msgId: `run/${RUN}/checkpoint/policy/0`, checkpoint: { ref: { runId: RUN, kind: commonV1.CheckpointKind.POLICY, version: 0 }, optimizerStep: 3 } });

  await publishEvent(watcherBus, RUN, await writeDataset(artifacts.store, RUN, 1, goldRecords(tinyPool(), 24, 48)));
  await until(() => stopping !== undefined, 60_000, 'the stop');
  await stopping;
  expect(first.trainer.consumerStats()['trainer-datasetReady']).toMatchObject({ acked: 0, handlerErrors: 1 });
  expect(await artifacts.store.exists(`runs/${RUN}/checkpoints/policy/v1/COMPLETE`)).toBe(false);

  // The next process gets the event again (handed back with a delay) and trains the iteration whole.
  const steps: number[] = [];
  const second = await start((e) => steps.push(e.step));
  await until(() => seen.length === 2, 60_000, 'CheckpointPublished(policy v1) on JetStream');
  expect(steps).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  expect(seen[1]).toMatchObject({
    msgId: `run/${RUN}/checkpoint/policy/1`,
    checkpoint: { ref: { runId: RUN, kind: commonV1.CheckpointKind.POLICY, version: 1 }, iteration: 1, trainingExamples: 24, optimizerStep: 30, parent: { runId: RUN, version: 0 } },
  });
  // The event is published inside the handler; its ack follows the handler's return.
  await until(() => second.trainer.consumerStats()['trainer-datasetReady']?.acked === 1, 10_000, 'the ack of the redelivered DatasetReady');
  expect(second.trainer.consumerStats()['trainer-datasetReady']).toMatchObject({ acked: 1, redelivered: 1 });
  expect((await getRun(runStore, RUN)).state).toBe(runV1.RunState.RUNNING);
  await second.close();

  // A trainer that trained nothing since it started answers from the stored checkpoints.
  const third = await start();
  expect(await third.client.getTrainingStatus(RUN)).toMatchObject({ runId: RUN, stage: commonV1.Stage.ITERATION, iteration: 1, training: false, step: 30, examplesSeen: 120, learningRate: 0.002 });
  expect((await third.client.listCheckpoints(RUN)).map((c) => c.ref?.version)).toEqual([0, 1]);
  await watcher.close();
}, 150_000);
