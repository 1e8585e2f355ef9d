import { status } from '@grpc/grpc-js';
import { commonV1, createEvent, RUN_ID_PATTERN, runV1, type eventsV1 } from '@mstar/contracts';
import { getRun, updateRun } from '@mstar/runs';
import { createInMemoryRunStore } from '@mstar/stores';
import { checkpointPublished } from '@mstar/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fitCancelReason, generatedRunId } from '../src/index.js';
import { createEventHub, watchRun } from '../src/watch.js';
import { failure, healthStatus, publishEvent, startHarness, tinySpec, until, type Harness } from './fixture.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const kinds = (events: readonly eventsV1.Event[], runId: string): string[] => events.filter((e) => e.runId === runId).map((e) => e.payload?.$case ?? '');

test('health says SERVING once the consumers are up', async () => {
  expect(await healthStatus(`127.0.0.1:${h.balancer.port}`, 'mstar.balancer.v1.BalancerService')).toBe('SERVING');
});

describe('StartRun', () => {
  test('creates a RUNNING run at WARMUP with a generated id and emits RunStarted with the spec', async () => {
    const spec = tinySpec();
    const { run, created } = await h.client.startRun({ spec, runId: '', idempotencyKey: '' });
    expect(created).toBe(true);
    expect(run?.runId).toMatch(RUN_ID_PATTERN);
    expect(run?.state).toBe(runV1.RunState.RUNNING);
    expect(run?.stage).toBe(commonV1.Stage.WARMUP);
    expect(run?.iteration).toBe(0);
    expect(run?.temperature).toBeUndefined();
    expect(run?.createdAt).toBeInstanceOf(Date);
    const runId = run!.runId;
    await until(() => kinds(h.events, runId).includes('runStarted'));
    const started = h.events.find((e) => e.runId === runId && e.payload?.$case === 'runStarted');
    expect(started?.eventId).toBe(`run/${runId}/started`);
    expect(started?.source).toBe('balancer');
    expect(started?.payload?.$case === 'runStarted' && runV1.RunSpec.toJSON(started.payload.value.spec!)).toEqual(runV1.RunSpec.toJSON(spec));
    expect((await h.client.getRun({ runId })).run).toEqual(run);
  });

  test('rejects invalid specs with INVALID_ARGUMENT naming the field', async () => {
    const cases: [(spec: runV1.RunSpec) => void, string][] = [
      [(s) => (s.temperature!.mode = runV1.TemperatureMode.UNSPECIFIED), 'spec.temperature.mode'],
      [(s) => (s.world!.poolSize = 0), 'spec.world.pool_size'],
      [(s) => (s.temperature!.rewardPassK = 5), 'spec.temperature.reward_pass_k'],
      [(s) => (s.temperature!.grid = { grid: { $case: 'list', value: { values: [0.5, 0.5] } } }), 'spec.temperature.grid.list.values'],
      [(s) => (s.iterations = 0), 'spec.iterations'],
      [(s) => (s.name = ''), 'spec.name'],
    ];
    for (const [edit, field] of cases) {
      const error = await failure(h.client.startRun({ spec: tinySpec(edit), runId: '', idempotencyKey: '' }));
      expect(error.code, field).toBe(status.INVALID_ARGUMENT);
      expect(error.details.startsWith(`${field}:`), error.details).toBe(true);
    }
    const missing = await failure(h.client.startRun({ spec: undefined, runId: '', idempotencyKey: '' }));
    expect(missing).toEqual({ code: status.INVALID_ARGUMENT, details: 'spec is required' });
    const badId = await failure(h.client.startRun({ spec: tinySpec(), runId: 'no.dots', idempotencyKey: '' }));
    expect(badId.code).toBe(status.INVALID_ARGUMENT);
    expect(badId.details).toMatch(/^run_id must be/);
    const longKey = await failure(h.client.startRun({ spec: tinySpec(), runId: '', idempotencyKey: 'k'.repeat(129) }));
    expect(longKey.code).toBe(status.INVALID_ARGUMENT);
    expect(longKey.details).toMatch(/^idempotency_key/);
  });

  test('the same idempotency key returns the run it created; with another spec it is ALREADY_EXISTS', async () => {
    const key = `key-${Date.now()}`;
    const first = await h.client.startRun({ spec: tinySpec(), runId: '', idempotencyKey: key });
    const again = await h.client.startRun({ spec: tinySpec(), runId: '', idempotencyKey: key });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.run).toEqual(first.run);
    expect(first.run?.runId).toBe(generatedRunId(key));
    expect(first.run?.idempotencyKey).toBe(key);
    const other = await failure(h.client.startRun({ spec: tinySpec((s) => (s.seed = 99)), runId: '', idempotencyKey: key }));
    expect(other.code).toBe(status.ALREADY_EXISTS);
    expect(other.details).toMatch(/different spec/);
  });

  test('a taken run id is ALREADY_EXISTS unless key and spec are the same', async () => {
    const runId = 'dup-run';
    expect((await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' })).created).toBe(true);
    expect((await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' })).created).toBe(false);
    const otherSpec = await failure(h.client.startRun({ spec: tinySpec((s) => (s.iterations = 3)), runId, idempotencyKey: '' }));
    expect(otherSpec.code).toBe(status.ALREADY_EXISTS);
    const otherKey = await failure(h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: 'another' }));
    expect(otherKey.code).toBe(status.ALREADY_EXISTS);
    expect(otherKey.details).toMatch(/different idempotency key/);
  });
});

describe('GetRun, ListRuns, GetTemperature, ListIterationStats', () => {
  test('unknown and malformed run ids', async () => {
    for (const call of [h.client.getRun, h.client.getTemperature, h.client.listIterationStats]) {
      const unknown = await failure(call({ runId: 'nope' }));
      expect(unknown).toEqual({ code: status.NOT_FOUND, details: 'run nope does not exist' });
      expect((await failure(call({ runId: '' }))).code).toBe(status.INVALID_ARGUMENT);
    }
  });

  test('a new run: the starting temperature, no sweep, no rows', async () => {
    const { run } = await h.client.startRun({ spec: tinySpec((s) => (s.temperature!.staticTemperature = 0.9)), runId: 'temp-run', idempotencyKey: '' });
    expect(await h.client.getTemperature({ runId: run!.runId })).toEqual({
      temperature: 0.9,
      iteration: 0,
      mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K,
      lastSweep: undefined,
      lastSweepIteration: 0,
    });
    expect(await h.client.listIterationStats({ runId: run!.runId })).toEqual({ iterations: [] });
  });

  test('lists newest first, by state, a page at a time; bad pages are INVALID_ARGUMENT', async () => {
    const ids = ['list-a', 'list-b', 'list-c'];
    for (const runId of ids) {
      await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
      await new Promise((r) => setTimeout(r, 5));
    }
    await h.client.cancelRun({ runId: 'list-b', reason: 'test' });
    const all = await h.client.listRuns({ state: runV1.RunState.UNSPECIFIED, pageSize: 0, pageToken: '' });
    const listed = all.runs.map((r) => r.runId).filter((id) => ids.includes(id));
    expect(listed).toEqual(['list-c', 'list-b', 'list-a']);
    const times = all.runs.map((r) => r.createdAt!.getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await h.client.listRuns({ state: runV1.RunState.UNSPECIFIED, pageSize: 2, pageToken });
      expect(page.runs.length).toBeLessThanOrEqual(2);
      seen.push(...page.runs.map((r) => r.runId));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '');
    expect(seen).toEqual(all.runs.map((r) => r.runId));
    expect(pages).toBe(Math.ceil(all.runs.length / 2));

    const cancelled = await h.client.listRuns({ state: runV1.RunState.CANCELLED, pageSize: 10, pageToken: '' });
    expect(cancelled.runs.map((r) => r.runId)).toContain('list-b');
    expect(cancelled.runs.every((r) => r.state === runV1.RunState.CANCELLED)).toBe(true);

    const badToken = await failure(h.client.listRuns({ state: 0, pageSize: 2, pageToken: 'not-a-token' }));
    expect(badToken).toEqual({ code: status.INVALID_ARGUMENT, details: 'page_token is not a token returned by ListRuns' });
    const badSize = await failure(h.client.listRuns({ state: 0, pageSize: 1001, pageToken: '' }));
    expect(badSize.code).toBe(status.INVALID_ARGUMENT);
    expect(badSize.details).toMatch(/^page_size/);
  });
});

describe('CancelRun', () => {
  test('cancels a running run and emits RunCancelled and RunFinished(CANCELLED); again returns it unchanged', async () => {
    const runId = 'cancel-me';
    await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
    const { run } = await h.client.cancelRun({ runId, reason: 'enough' });
    expect(run?.state).toBe(runV1.RunState.CANCELLED);
    expect(run?.finishedAt).toBeInstanceOf(Date);
    await until(() => kinds(h.events, runId).includes('runFinished'));
    const cancelled = h.events.find((e) => e.runId === runId && e.payload?.$case === 'runCancelled');
    expect(cancelled?.payload).toEqual({ $case: 'runCancelled', value: { reason: 'enough' } });
    const finished = h.events.find((e) => e.runId === runId && e.payload?.$case === 'runFinished');
    expect(finished?.payload).toEqual({ $case: 'runFinished', value: { state: runV1.RunState.CANCELLED, errorMessage: '', summary: [] } });
    const again = await h.client.cancelRun({ runId, reason: 'twice' });
    expect(again.run).toEqual(run);
  });

  test('NOT_FOUND for an unknown run, FAILED_PRECONDITION for a run that ended otherwise', async () => {
    expect((await failure(h.client.cancelRun({ runId: 'ghost', reason: '' }))).code).toBe(status.NOT_FOUND);
    for (const state of [runV1.RunState.SUCCEEDED, runV1.RunState.FAILED]) {
      const runId = `ended-${state}`;
      await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
      await updateRun(h.runStore, runId, (r) => ({ ...r, state, finishedAt: new Date() }));
      const error = await failure(h.client.cancelRun({ runId, reason: '' }));
      expect(error.code).toBe(status.FAILED_PRECONDITION);
      expect(error.details).toMatch(/has already ended/);
    }
    const longReason = await failure(h.client.cancelRun({ runId: 'ghost', reason: 'r'.repeat(2000) }));
    expect(longReason.code).toBe(status.INVALID_ARGUMENT);
  });

  test('fitCancelReason keeps a reason that fits and cuts a longer one to at most 1,024 characters ending in …, never inside a surrogate pair', async () => {
    const fits = 'r'.repeat(1024);
    expect(fitCancelReason(fits)).toBe(fits);
    expect(fitCancelReason('r'.repeat(1025))).toBe(`${'r'.repeat(1023)}…`);
    // '😀' is two UTF-16 code units; placed at 1,022-1,023 it would be cut in half at 1,023.
    const pair = fitCancelReason(`${'r'.repeat(1022)}😀${'r'.repeat(100)}`);
    expect(pair).toBe(`${'r'.repeat(1022)}…`);
    const runId = 'cancel-long';
    await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
    const reason = fitCancelReason('why '.repeat(400));
    const { run } = await h.client.cancelRun({ runId, reason });
    expect(run?.state).toBe(runV1.RunState.CANCELLED);
    await until(() => kinds(h.events, runId).includes('runCancelled'));
    const cancelled = h.events.find((e) => e.runId === runId && e.payload?.$case === 'runCancelled');
    expect(cancelled?.payload).toEqual({ $case: 'runCancelled', value: { reason } });
    expect(reason).toHaveLength(1024);
  });
});

describe('WatchRun', () => {
  test('streams the record, then each event with the record after it, and ends after RunFinished', async () => {
    const runId = 'watched';
    await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
    // The server subscribes to the run's events and record when it writes the first message.
    let received = 0;
    const watching = h.client.watch(runId, undefined, () => received++);
    await until(async () => (await getRun(h.runStore, runId)).stage === commonV1.Stage.WARMUP);
    await until(() => received > 0);
    await publishEvent(h.bus, runId, checkpointPublished(runId, commonV1.CheckpointKind.POLICY, 0, { trainingExamples: 6 }));
    await until(async () => (await getRun(h.runStore, runId)).stage === commonV1.Stage.PRM_DATA);
    const source = { runId, kind: commonV1.CheckpointKind.POLICY, version: 0 };
    await publishEvent(h.bus, runId, { $case: 'prmDataReady', value: { artifactKey: 'k', sourcePolicy: source, prompts: 2, trajectories: 2, labelledSteps: 4, rollouts: 4, meanStepLabel: 0.5 } });
    await until(async () => (await getRun(h.runStore, runId)).stage === commonV1.Stage.PRM);
    await h.client.cancelRun({ runId, reason: 'done watching' });
    const messages = await watching;

    expect(messages[0]?.event).toBeUndefined();
    expect(messages[0]?.run?.state).toBe(runV1.RunState.RUNNING);
    const withEvents = messages.filter((m) => m.event !== undefined && m.event.payload?.$case !== 'runStarted');
    expect(withEvents.map((m) => [m.event?.payload?.$case, commonV1.stageToJSON(m.run!.stage), runV1.runStateToJSON(m.run!.state)])).toEqual([
      ['checkpointPublished', 'STAGE_PRM_DATA', 'RUN_STATE_RUNNING'],
      ['prmDataReady', 'STAGE_PRM', 'RUN_STATE_RUNNING'],
      ['runCancelled', 'STAGE_PRM', 'RUN_STATE_CANCELLED'],
      ['runFinished', 'STAGE_PRM', 'RUN_STATE_CANCELLED'],
    ]);
    expect(messages[messages.length - 1]?.event?.payload?.$case).toBe('runFinished');
    // Record-only messages are changes: no two consecutive equal records.
    const records = messages.filter((m) => m.event === undefined).map((m) => JSON.stringify(runV1.Run.toJSON(m.run!)));
    expect(new Set(records).size).toBe(records.length);
  });

  test('a run failed by another service ends the watch with the RunFinished(FAILED) the balancer announces', async () => {
    const runId = 'failed-elsewhere';
    await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
    let received = 0;
    const watching = h.client.watch(runId, undefined, () => received++);
    await until(() => received > 0);
    await updateRun(h.runStore, runId, (r) => ({ ...r, state: runV1.RunState.FAILED, errorMessage: 'trainer: bad dataset line', finishedAt: new Date() }));
    const messages = await watching;
    const last = messages[messages.length - 1];
    expect(last?.event?.payload).toEqual({ $case: 'runFinished', value: { state: runV1.RunState.FAILED, errorMessage: 'trainer: bad dataset line', summary: [] } });
    expect(last?.run?.state).toBe(runV1.RunState.FAILED);
  });

  test('an ended run gets one message; an unknown run is NOT_FOUND', async () => {
    const runId = 'ended-watch';
    await h.client.startRun({ spec: tinySpec(), runId, idempotencyKey: '' });
    await h.client.cancelRun({ runId, reason: '' });
    const messages = await h.client.watch(runId);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.run?.state).toBe(runV1.RunState.CANCELLED);
    expect(messages[0]?.event).toBeUndefined();
    expect((await failure(h.client.watch('nobody'))).code).toBe(status.NOT_FOUND);
  });
});

describe('watchRun', () => {
  const spec = tinySpec();
  const record = (runId: string): runV1.Run => ({
    runId,
    spec,
    state: runV1.RunState.RUNNING,
    stage: commonV1.Stage.WARMUP,
    iteration: 0,
    errorMessage: '',
    createdAt: new Date(),
    updatedAt: new Date(),
    finishedAt: undefined,
    summary: [],
    idempotencyKey: '',
  });

  test('a cancelled call stops watching: later events are not written', async () => {
    const runStore = createInMemoryRunStore();
    await runStore.create('runs.w1', runV1.Run.encode(record('w1')).finish());
    const hub = createEventHub();
    const written: unknown[] = [];
    const call = new AbortController();
    const done = watchRun({ runStore, hub, finishGraceMs: 60_000 }, 'w1', (m) => written.push(m), call.signal);
    await until(() => written.length === 1);
    call.abort();
    await done;
    hub.notify(createEvent({ runId: 'w1', source: 'test', payload: { $case: 'runCancelled', value: { reason: '' } } }));
    await updateRun(runStore, 'w1', (r) => ({ ...r, stage: commonV1.Stage.PRM }));
    await new Promise((r) => setTimeout(r, 50));
    expect(written).toHaveLength(1);
    await runStore.close();
  });

  test('a terminal record without RunFinished ends the watch after the grace period; a redelivered event is written once', async () => {
    const runStore = createInMemoryRunStore();
    await runStore.create('runs.w2', runV1.Run.encode(record('w2')).finish());
    const hub = createEventHub();
    const written: { event?: eventsV1.Event | undefined }[] = [];
    const done = watchRun({ runStore, hub, finishGraceMs: 200 }, 'w2', (m) => written.push(m), new AbortController().signal);
    await until(() => written.length === 1);
    const event = createEvent({ runId: 'w2', source: 'test', payload: { $case: 'prmDataReady', value: { artifactKey: 'k', sourcePolicy: { runId: 'w2', kind: commonV1.CheckpointKind.POLICY, version: 0 }, prompts: 1, trajectories: 1, labelledSteps: 1, rollouts: 1, meanStepLabel: 1 } } });
    hub.notify(event);
    hub.notify(event);
    await until(() => written.length === 2);
    const started = Date.now();
    await updateRun(runStore, 'w2', (r) => ({ ...r, state: runV1.RunState.FAILED }));
    await done;
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(written.filter((m) => m.event !== undefined)).toHaveLength(1);
    await runStore.close();
  });
});
