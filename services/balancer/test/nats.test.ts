import { status, type ServiceError } from '@grpc/grpc-js';
import { commonV1, EVENT_STREAM, EVENT_STREAM_SUBJECTS, runV1, type EventPayload, type eventsV1 } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { getRun } from '@mstar/runs';
import { createNatsRunStore, type RunStore } from '@mstar/stores';
import { checkpointPublished, startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig, startBalancer } from '../src/index.js';
import { balancerClient, publishEvent, silentLogger, startHarness, tinySpec, until, type Harness } from './fixture.js';

let nats: NatsServerHandle;
let bus: EventBus;
let runStore: RunStore;
let h: Harness;
beforeAll(async () => {
  nats = await startNatsServer();
  // A short ack wait: a stopped consumer's last pull request can still take the redelivered event,
  // which then comes back only after ack-wait.
  bus = await createJetStreamBus({ servers: nats.url, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] }, ackWaitMs: 2_000, logger: silentLogger });
  runStore = await createNatsRunStore({ servers: nats.url, bucket: 'mstar-runs' });
  h = await startHarness({
    bus,
    runStore,
    script: { greedy: (split, version) => (split === 'validation' ? version + 1 : 1), samples: { 0: { 0.5: { m: 2, r: 1 }, 1: { m: 3, r: 2 }, 1.5: { m: 4, r: 1 } }, 1: { 1: { m: 4, r: 3 } } } },
  });
});
afterAll(async () => {
  await h.close();
  await bus.close();
  await runStore.close();
  await nats.stop();
});

const ofKind = (events: readonly eventsV1.Event[], runId: string, kind: EventPayload['$case']) => events.filter((e) => e.runId === runId && e.payload?.$case === kind);

test('over JetStream and NATS KV: a balancer stopped mid-evaluation hands the event to its successor, which finishes the run', async () => {
  const runId = 'nats-run';
  const { run } = await h.client.startRun({ spec: tinySpec((s) => (s.iterations = 1)), runId, idempotencyKey: 'nats-key' });
  expect(run?.state).toBe(runV1.RunState.RUNNING);
  expect((await getRun(runStore, runId)).stage).toBe(commonV1.Stage.WARMUP);
  h.policy.served = { runId, version: 0 };
  h.prm.served = { runId, version: 0 };
  const watchCall = h.client.raw.watchRun({ runId });
  const watched: runV1.Run[] = [];
  const watchEnd = new Promise<ServiceError | undefined>((resolve) => {
    watchCall.on('data', (m: { run: runV1.Run }) => watched.push(m.run));
    watchCall.on('error', (e: ServiceError) => resolve(e));
    watchCall.on('end', () => resolve(undefined));
  });

  h.policy.delayMs = 2_000;
  await publishEvent(bus, runId, checkpointPublished(runId, commonV1.CheckpointKind.POLICY, 0, { createdAt: new Date(run!.createdAt!.getTime() + 10_000), trainingExamples: 6 }));
  await publishEvent(bus, runId, checkpointPublished(runId, commonV1.CheckpointKind.PRM, 0, { trainingExamples: 2 }));
  await until(() => h.policy.generateCalls.length === 1);
  await h.balancer.close();
  // Open watches end with UNAVAILABLE so their clients watch again on another replica.
  expect((await watchEnd)?.code).toBe(status.UNAVAILABLE);
  expect(watched[0]?.runId).toBe(runId);
  expect(ofKind(h.events, runId, 'iterationEvaluated')).toHaveLength(0);

  h.policy.delayMs = 0;
  const config = loadConfig({ GRPC_PORT: '0', LOG_LEVEL: 'silent', POLICY_ADDRESS: h.policy.address, PRM_ADDRESS: h.prm.address, VERSION_WAIT: '5s', SHUTDOWN_GRACE: '1s' });
  const successor = await startBalancer({ config, bus, runStore, artifacts: h.artifacts, logger: silentLogger });
  const client = balancerClient(`127.0.0.1:${successor.port}`);
  try {
    await until(() => ofKind(h.events, runId, 'temperatureSelected').length === 1, 20_000);
    const selected = ofKind(h.events, runId, 'temperatureSelected')[0]?.payload;
    expect(selected?.$case === 'temperatureSelected' && selected.value).toMatchObject({ iteration: 1, temperature: 1, swept: true });
    const evaluated = ofKind(h.events, runId, 'iterationEvaluated');
    expect(evaluated).toHaveLength(1);
    expect(evaluated[0]?.payload?.$case === 'iterationEvaluated' && evaluated[0].payload.value.stats).toMatchObject({
      greedyAccuracyValidation: 0.25,
      passAtK: 0.75,
      rewardPassAtK: 0.5,
      evalTemperature: 1,
      wallSeconds: 10,
      datasetSize: 6,
    });

    const watching = client.watch(runId);
    h.policy.served = { runId, version: 1 };
    await publishEvent(bus, runId, checkpointPublished(runId, commonV1.CheckpointKind.POLICY, 1, { trainingExamples: 4 }));
    const messages = await watching;
    const last = messages[messages.length - 1];
    expect(last?.event?.payload?.$case).toBe('runFinished');
    expect(last?.run?.state).toBe(runV1.RunState.SUCCEEDED);
    expect(last?.run?.summary.map((row) => [row.iteration, row.passAtK, row.rewardPassAtK, row.datasetSize])).toEqual([
      [0, 0.75, 0.5, 6],
      [1, 1, 0.75, 4],
    ]);
    const stored = await getRun(runStore, runId);
    expect(stored.state).toBe(runV1.RunState.SUCCEEDED);
    expect((await client.startRun({ spec: tinySpec((s) => (s.iterations = 1)), runId, idempotencyKey: 'nats-key' })).created).toBe(false);
  } finally {
    client.raw.close();
    await successor.close();
  }
});
