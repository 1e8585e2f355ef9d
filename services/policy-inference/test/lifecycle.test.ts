import { status, type ServiceError } from '@grpc/grpc-js';
import { commonV1, createEvent, eventsV1, eventSubject, type policyV1 } from '@mstar/contracts';
import { createInProcessBus, type EventBus } from '@mstar/events';
import { checkpointPublished } from '@mstar/testing';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPolicyClient, startPolicyInference, type PolicyClient, type PolicyLoader, type RunningPolicyInference } from '../src/index.js';
import { checkpointPrefix, decoderProbe, failure, healthClient, prompt, RUN_ID, silentLogger, tempArtifacts, testConfig, until, writeCheckpoint, type TempArtifacts } from './fixture.js';

let artifacts: TempArtifacts;
beforeAll(async () => {
  artifacts = await tempArtifacts();
  for (const v of [0, 1, 2]) await writeCheckpoint(artifacts.store, v);
});
afterAll(async () => {
  await artifacts.cleanup();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(env: Record<string, string>, extra: { bus?: EventBus; wrapLoader?: (l: PolicyLoader) => PolicyLoader } = {}) {
  const service = await startPolicyInference({ config: testConfig(env), artifacts: artifacts.store, logger: silentLogger, ...extra });
  cleanups.push(() => service.close());
  const address = `127.0.0.1:${service.port}`;
  const client = createPolicyClient(address, { retry: false });
  cleanups.push(() => client.close());
  const health = healthClient(address);
  cleanups.push(() => health.close());
  return { service, client, health };
}

async function publishCheckpoint(bus: EventBus, version: number): Promise<void> {
  const event = createEvent({ runId: RUN_ID, source: 'trainer-test', payload: checkpointPublished(RUN_ID, commonV1.CheckpointKind.POLICY, version, { artifactPrefix: checkpointPrefix(version) }) });
  await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
}

/** Watches the decoder runs of every service these tests start. */
const decoder = decoderProbe();

/** A request that keeps one worker busy for seconds on the TINY model: 4 prompts x 64 samples x up to 100 tokens. */
const LONG: Partial<policyV1.GenerateRequest> = { prompts: [0, 1, 2, 3].map((i) => prompt(i)), numSamples: 64, temperature: 1, topP: 1, maxNewTokens: 100, seed: 9 };

/** Runs a Generate call in the background, remembering its completions and when it ended. */
function background(client: PolicyClient, request: Partial<policyV1.GenerateRequest>, signal?: AbortSignal) {
  const state = { completions: [] as policyV1.Completion[], ended: false };
  const done = (async () => {
    try {
      for await (const c of client.generate(request, signal === undefined ? {} : { signal })) state.completions.push(c);
    } finally {
      state.ended = true;
    }
  })();
  // Callers await `done` (or its rejection) themselves; this keeps an early failure from going unhandled.
  done.catch(() => undefined);
  return { state, done };
}

const drain = async (it: AsyncIterable<unknown>): Promise<number> => {
  let n = 0;
  for await (const _ of it) n++;
  return n;
};

describe('with the event bus', () => {
  test('health, hot reload with a pinned request in flight, and a responsive event loop', async () => {
    const bus = createInProcessBus();
    cleanups.push(() => bus.close());
    const { service, client, health } = await start({ RETAINED_VERSIONS: '1' }, { bus, wrapLoader: decoder.wrap });

    // Nothing loaded: not serving, and calls say so.
    expect(await health.check()).toBe('NOT_SERVING');
    expect((await failure(() => client.getModelInfo())).code).toBe(status.UNAVAILABLE);
    expect((await failure(() => drain(client.generate({ ...LONG, numSamples: 1, maxNewTokens: 2 })))).code).toBe(status.UNAVAILABLE);

    await publishCheckpoint(bus, 1);
    await service.ready;
    expect(await health.check()).toBe('SERVING');
    expect((await client.getModelInfo()).policy?.version).toBe(1);

    const started = decoder.runs();
    const pinned = background(client, { ...LONG, policy: { runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 1 } });
    await until(() => decoder.runs() > started);

    // A health check during the multi-second batch is answered right away, before the batch ends.
    const asked = performance.now();
    expect(await health.check()).toBe('SERVING');
    const healthMs = performance.now() - asked;
    expect(pinned.state.ended).toBe(false);
    expect(healthMs).toBeLessThan(500);

    // The pinned request stays in flight (its decoder held at the gate) across the reload.
    const release = decoder.hold();
    await until(() => decoder.waiting() > 0);
    await publishCheckpoint(bus, 2);
    await until(async () => (await client.getModelInfo()).policy?.version === 2);
    expect(pinned.state.ended).toBe(false);
    // With one retained version, v1 takes no new requests while its in-flight one finishes on it.
    expect(service.registry.versions()).toEqual([2]);
    const refused = await failure(() => drain(client.generate({ ...LONG, numSamples: 1, maxNewTokens: 2, policy: { runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 1 } })));
    expect(refused.code).toBe(status.NOT_FOUND);
    release();

    await pinned.done;
    expect(pinned.state.completions).toHaveLength(256);
    expect(new Set(pinned.state.completions.map((c) => c.policy?.version))).toEqual(new Set([1]));

    const fresh = [];
    for await (const c of client.generate({ ...LONG, numSamples: 2, maxNewTokens: 4 })) fresh.push(c);
    expect(new Set(fresh.map((c) => c.policy?.version))).toEqual(new Set([2]));
  });
});

describe('load and cancellation', () => {
  let svc: { service: RunningPolicyInference; client: PolicyClient };

  beforeAll(async () => {
    const service = await startPolicyInference({
      config: testConfig({ INITIAL_CHECKPOINT: checkpointPrefix(0), MAX_QUEUE: '2' }),
      artifacts: artifacts.store,
      logger: silentLogger,
      wrapLoader: decoder.wrap,
    });
    svc = { service, client: createPolicyClient(`127.0.0.1:${service.port}`, { retry: false }) };
  });
  afterAll(async () => {
    svc.client.close();
    await svc.service.close();
  });

  test('a flood beyond the queue gets RESOURCE_EXHAUSTED; the admitted requests complete', async () => {
    const controller = new AbortController();
    // The long request holds the only wave slot, its decoder held at the gate, until the refusals are in.
    const release = decoder.hold();
    const long = background(svc.client, LONG, controller.signal);
    await until(() => decoder.waiting() > 0);
    const small = { prompts: [prompt(5)], numSamples: 2, temperature: 1, topP: 1, maxNewTokens: 6, seed: 1 };
    let answered = 0;
    const flood = [0, 1, 2, 3, 4].map((seed) => drain(svc.client.generate({ ...small, seed })).finally(() => answered++));
    const settled = Promise.allSettled(flood);
    await until(() => answered >= 3);
    expect(long.state.ended).toBe(false);
    release();
    controller.abort();
    const results = await settled;
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(3);
    for (const r of refused) expect((r.reason as ServiceError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => r.value)).toEqual([2, 2]);
    await expect(long.done).rejects.toMatchObject({ code: status.CANCELLED });
  });

  test('cancelling a call stops its graph runs', async () => {
    const controller = new AbortController();
    const started = decoder.runs();
    const long = background(svc.client, LONG, controller.signal);
    await until(() => decoder.runs() >= started + 5);
    controller.abort();
    await expect(long.done).rejects.toMatchObject({ code: status.CANCELLED });
    await new Promise((r) => setTimeout(r, 200));
    const settledRuns = decoder.runs();
    await new Promise((r) => setTimeout(r, 400));
    expect(decoder.runs()).toBe(settledRuns);
    // A full run takes about 100 decoder steps; the cancelled one stopped well before that.
    expect(settledRuns - started).toBeLessThan(60);
    expect(long.state.completions.length).toBeLessThan(256);
    // The worker is free again.
    expect(await drain(svc.client.generate({ prompts: [prompt(6)], numSamples: 1, temperature: 0, topP: 1, maxNewTokens: 3 }))).toBe(1);
  });

  test('an expired deadline stops the work the same way', async () => {
    const started = decoder.runs();
    const err = await failure(() => drain(svc.client.generate(LONG, { deadlineMs: 150 })));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 200));
    const settledRuns = decoder.runs();
    await new Promise((r) => setTimeout(r, 400));
    expect(decoder.runs()).toBe(settledRuns);
    expect(settledRuns - started).toBeLessThan(60);
  });
});

test('close drains: a stream in flight completes, then the server stops', async () => {
  // A grace long enough for the stream however loaded the machine is (the fixture's 2 s is not).
  const { service, client, health } = await start({ INITIAL_CHECKPOINT: checkpointPrefix(0), SHUTDOWN_GRACE: '60s' }, { wrapLoader: decoder.wrap });
  await service.ready;
  const started = decoder.runs();
  const inFlight = background(client, { prompts: [prompt(7), prompt(8)], numSamples: 16, temperature: 1, topP: 1, maxNewTokens: 60, seed: 3 });
  // Close once the call is being generated: one that reached the server after close began would get UNAVAILABLE.
  await until(() => decoder.runs() > started);
  const closing = service.close();
  expect(await health.check()).toBe('NOT_SERVING');
  await inFlight.done;
  expect(inFlight.state.completions).toHaveLength(32);
  await closing;
  expect((await failure(() => client.getModelInfo({ deadlineMs: 2_000 }))).code).toBe(status.UNAVAILABLE);
});
