import { status } from '@grpc/grpc-js';
import { commonV1, EVENT_STREAM, EVENT_STREAM_SUBJECTS, type prmV1 } from '@mstar/contracts';
import { DeadlineExceededError, NotFoundError } from '@mstar/errors';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { createPrmClient, startPrmScoring } from '../src/index.js';
import {
  failure,
  gate,
  healthClient,
  prompt,
  publishCheckpoint,
  recordingLoader,
  RESPONSES,
  RUN_ID,
  silentLogger,
  tempArtifacts,
  testConfig,
  until,
  writeCheckpoint,
  type RunLog,
  type TempArtifacts,
} from './fixture.js';

let artifacts: TempArtifacts;
let nats: NatsServerHandle;
beforeAll(async () => {
  artifacts = await tempArtifacts();
  for (const v of [0, 1]) await writeCheckpoint(artifacts.store, v);
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats.stop();
  await artifacts.cleanup();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(env: Record<string, string>, log: RunLog, bus?: EventBus) {
  const service = await startPrmScoring({ config: testConfig(env), artifacts: artifacts.store, logger: silentLogger, bus, wrapLoader: recordingLoader(log) });
  cleanups.push(() => service.close());
  const address = `127.0.0.1:${service.port}`;
  const client = createPrmClient(address, { retry: false });
  cleanups.push(() => client.close());
  const health = healthClient(address);
  cleanups.push(() => health.close());
  return { service, client, health };
}

const pin = (version: number): commonV1.CheckpointRef => ({ runId: RUN_ID, kind: commonV1.CheckpointKind.PRM, version });
const targets = Array.from({ length: 12 }, (_, i) => ({ promptIndex: i % 2, response: RESPONSES[i % RESPONSES.length] as string }));
const REQUEST: Partial<prmV1.ScoreStepsRequest> = { prompts: [prompt(3), prompt(4)], targets, aggregation: commonV1.Aggregation.MIN };

test('loads PRM checkpoints from CheckpointPublished over JetStream: NOT_SERVING until the first, hot reload without dropping a call in flight', async () => {
  const bus = await createJetStreamBus({ servers: nats.url, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] }, logger: silentLogger });
  cleanups.push(() => bus.close());
  const log: RunLog = { runs: [], gate: undefined, unloads: [] };
  const { service, client, health } = await start({ RETAINED_VERSIONS: '1', MAX_BATCH_RESPONSES: '4' }, log, bus);

  // Nothing loaded: not serving, and calls say so.
  expect(await health.check()).toBe('NOT_SERVING');
  expect((await failure(() => client.getModelInfo())).code).toBe(status.UNAVAILABLE);
  expect((await failure(() => client.scoreSteps(REQUEST))).code).toBe(status.UNAVAILABLE);

  // A policy checkpoint is not for this service; the PRM one is.
  await publishCheckpoint(bus, 0, commonV1.CheckpointKind.POLICY);
  await publishCheckpoint(bus, 0);
  const info = await client.waitForVersion({ runId: RUN_ID, version: 0 }, { timeoutMs: 15_000 });
  expect(info.prm).toEqual(pin(0));
  await service.ready;
  expect(await health.check()).toBe('SERVING');
  const v0 = await client.scoreSteps(REQUEST);

  // A v0-pinned call whose runs are held at the gate, so it is in flight across the reload.
  const held = gate();
  log.gate = held.promise;
  const runsBefore = log.runs.length;
  let ended = false;
  const inFlight = client.scoreSteps({ ...REQUEST, prm: pin(0) }).finally(() => (ended = true));
  await until(() => log.runs.length > runsBefore);

  await publishCheckpoint(bus, 1);
  await client.waitForVersion({ runId: RUN_ID, version: 1 }, { timeoutMs: 15_000 });
  // With one retained version, v0 takes no new calls while the one in flight finishes on it.
  expect(service.registry.versions()).toEqual([1]);
  expect((await failure(() => client.scoreSteps({ ...REQUEST, prm: pin(0) }))).code).toBe(status.NOT_FOUND);
  expect(ended).toBe(false);
  expect(log.unloads).toEqual([]);

  held.open();
  log.gate = undefined;
  const finished = await inFlight;
  expect(finished.prm).toEqual(pin(0));
  expect(finished.scores.map((s) => s.stepScores)).toEqual(v0.scores.map((s) => s.stepScores));
  // All 12 responses ran on v0 (3 runs of 4); v0 is unloaded once its last call is done.
  expect(log.runs.slice(runsBefore).map((r) => [r.version, r.rows])).toEqual([
    [0, 4],
    [0, 4],
    [0, 4],
  ]);
  await until(() => log.unloads.includes(0));

  const v1 = await client.scoreSteps(REQUEST);
  expect(v1.prm).toEqual(pin(1));
  expect(v1.scores[0]?.stepScores).not.toEqual(v0.scores[0]?.stepScores);
  expect(v1.scores.map((s) => s.stepCount)).toEqual(v0.scores.map((s) => s.stepCount));
});

test('waitForVersion: times out on a version that does not come, refuses another run, stops on abort', async () => {
  const log: RunLog = { runs: [], gate: undefined, unloads: [] };
  const { client } = await start({ INITIAL_CHECKPOINT: 'runs/run-test/checkpoints/prm/v0' }, log);
  expect((await client.waitForVersion({ runId: RUN_ID, version: 0 }, { timeoutMs: 5_000 })).prm).toEqual(pin(0));
  await expect(client.waitForVersion({ runId: RUN_ID, version: 1 }, { timeoutMs: 300, pollMs: 50 })).rejects.toThrow(DeadlineExceededError);
  await expect(client.waitForVersion({ runId: 'other-run', version: 0 }, { timeoutMs: 5_000 })).rejects.toThrow(NotFoundError);
  const controller = new AbortController();
  const waiting = client.waitForVersion({ runId: RUN_ID, version: 5 }, { timeoutMs: 10_000, signal: controller.signal });
  setTimeout(() => controller.abort(new Error('stop waiting')), 100);
  await expect(waiting).rejects.toThrow('stop waiting');
});

test('close drains: a call in flight completes, health turns NOT_SERVING, then the server stops', async () => {
  const log: RunLog = { runs: [], gate: undefined, unloads: [] };
  const { service, client, health } = await start({ INITIAL_CHECKPOINT: 'runs/run-test/checkpoints/prm/v0' }, log);
  await service.ready;
  const held = gate();
  log.gate = held.promise;
  const inFlight = client.scoreSteps(REQUEST);
  await until(() => log.runs.length > 0);
  const closing = service.close();
  expect(await health.check()).toBe('NOT_SERVING');
  held.open();
  const answer = await inFlight;
  expect(answer.scores).toHaveLength(12);
  await closing;
  expect((await failure(() => client.getModelInfo({ deadlineMs: 2_000 }))).code).toBe(status.UNAVAILABLE);
});
