import { status } from '@grpc/grpc-js';
import { commonV1, runV1, type EventPayload, type eventsV1 } from '@mstar/contracts';
import { deriveSeed } from '@mstar/metrics';
import { getRun } from '@mstar/runs';
import { createMetrics } from '@mstar/telemetry';
import { checkpointPublished } from '@mstar/testing';
import { afterEach, describe, expect, test } from 'vitest';
import type { BalancerProgress } from '../src/index.js';
import { publishEvent, startHarness, tinySpec, until, type Harness, type HarnessOptions, type PolicyScript } from './fixture.js';

const { POLICY, PRM } = commonV1.CheckpointKind;

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});
async function harness(options: HarnessOptions = {}): Promise<Harness> {
  const h = await startHarness(options);
  harnesses.push(h);
  return h;
}

/**
 * Validation has 4 prompts, K = 4, k = 2: a table {m, r} gives Pass@4 = m/4 and Reward-Pass@2 = r/4
 * (see the fixture). Greedy: the first version+1 validation prompts, min(4, version+2) of the 4
 * in-domain test prompts, and of the 2+2 out-of-domain ones 1 (then 2) compose and `version` style.
 */
const SCRIPT: PolicyScript = {
  greedy: (split, version) => ({ validation: version + 1, test: Math.min(4, version + 2), 'test-ood-compose': version === 0 ? 1 : 2, 'test-ood-style': version })[split] ?? 0,
  samples: {
    0: { 0.5: { m: 2, r: 1 }, 1: { m: 3, r: 2 }, 1.5: { m: 4, r: 1 } },
    1: { 0.5: { m: 3, r: 3 }, 1: { m: 4, r: 3 }, 1.5: { m: 4, r: 1 } },
    2: { 1: { m: 4, r: 4 } },
  },
};

const runEvents = (h: Harness, runId: string): eventsV1.Event[] => h.events.filter((e) => e.runId === runId);
const ofKind = <K extends EventPayload['$case']>(events: readonly eventsV1.Event[], kind: K) =>
  events.flatMap((e) => (e.payload?.$case === kind ? [e.payload.value as Extract<EventPayload, { $case: K }>['value']] : []));

async function startRun(h: Harness, runId: string, edit?: (spec: runV1.RunSpec) => void): Promise<runV1.Run> {
  const { run } = await h.client.startRun({ spec: tinySpec(edit), runId, idempotencyKey: '' });
  h.policy.served = { runId, version: 0 };
  h.prm.served = { runId, version: 0 };
  return run!;
}

/**
 * What trainer and data-curation would publish up to the PRM: policy v0 (created `v0At`), the PRM
 * data, prm v0. v0 says it trained on 12 examples, twice the spec's `warmup.examples`, as a
 * `warmup.hinted` warm-up does: row 0 reports the checkpoint's count.
 */
async function prepare(h: Harness, runId: string, v0At: Date): Promise<void> {
  await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 0, { createdAt: v0At, trainingExamples: 12 }));
  const source = { runId, kind: POLICY, version: 0 };
  await publishEvent(h.bus, runId, { $case: 'prmDataReady', value: { artifactKey: `runs/${runId}/prm-data.jsonl`, sourcePolicy: source, prompts: 2, trajectories: 2, labelledSteps: 4, rollouts: 8, meanStepLabel: 0.5 } });
  await publishEvent(h.bus, runId, checkpointPublished(runId, PRM, 0, { createdAt: new Date(v0At.getTime() + 5_000), trainingExamples: 2 }));
}

function datasetReady(runId: string, iteration: number, kept: number, temperature: number): EventPayload {
  return {
    $case: 'datasetReady',
    value: {
      dataset: {
        iteration,
        promptsTried: 4,
        promptsWithCorrect: 3,
        samplesGenerated: 16,
        correctSamples: 9,
        checkedSamples: 9,
        promptsSolvedGreedily: 0,
        promptsRationalized: 0,
        keptSamples: kept,
        meanPrmScore: 0.7,
        temperature,
        policy: { runId, kind: POLICY, version: iteration - 1 },
        artifactKey: `runs/${runId}/datasets/iteration-${iteration}.jsonl`,
        poolStart: 0,
        createdAt: new Date(),
      },
    },
  };
}

const rows = (...r: [number, number, number, number][]): commonV1.TemperatureSweepRow[] =>
  r.map(([temperature, passAtK, rewardPassAtK, sampleAccuracy]) => ({ temperature, passAtK, rewardPassAtK, sampleAccuracy }));

describe('the loop over a whole run (REWARD_PASS_AT_K, sweep before every iteration)', () => {
  test('evaluates v0, v1, v2 with exact numbers, selects temperatures, finishes with the summary, and re-publishes on redelivery', async () => {
    const progress: BalancerProgress[] = [];
    const h = await harness({ script: SCRIPT, extra: { onProgress: (p) => progress.push(p) } });
    const runId = 'full-run';
    const run = await startRun(h, runId);
    const created = run.createdAt!.getTime();
    const v0At = new Date(created + 30_000);
    const v1At = new Date(v0At.getTime() + 45_000);
    const v2At = new Date(v1At.getTime() + 20_000);
    const v0 = { runId, kind: POLICY, version: 0 };
    const v1 = { runId, kind: POLICY, version: 1 };
    const v2 = { runId, kind: POLICY, version: 2 };

    // Steps 2-5: warm-up, PRM data, PRM; the balancer evaluates v0 and selects T for iteration 1.
    await prepare(h, runId, v0At);
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 1);
    const row0: commonV1.IterationStats = {
      iteration: 0,
      policy: v0,
      temperature: 0,
      greedyAccuracyValidation: 0.25,
      greedyAccuracyInDomain: 0.5,
      greedyAccuracyOutOfDomain: 0.25,
      evalTemperature: 1,
      passAtK: 0.75,
      rewardPassAtK: 0.5,
      passAtKGap: 0.5,
      samplesPerPrompt: 4,
      rewardPassK: 2,
      datasetSize: 12,
      wallSeconds: 30,
      evaluatedAt: expect.any(Date) as Date,
    };
    const sweep0: commonV1.TemperatureSweep = {
      policy: v0,
      samplesPerPrompt: 4,
      rewardPassK: 2,
      validationPrompts: 4,
      greedyAccuracy: 0.25,
      rows: rows([0.5, 0.5, 0.25, 0.125], [1, 0.75, 0.5, 0.1875], [1.5, 1, 0.25, 0.25]),
    };
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')).toEqual([{ stats: row0 }]);
    expect(ofKind(runEvents(h, runId), 'temperatureSelected')).toEqual([
      { iteration: 1, temperature: 1, mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K, swept: true, sweep: sweep0, policy: v0 },
    ]);
    const seed0 = deriveSeed(7, 'balancer', 0);
    expect(h.policy.generateCalls).toEqual([0.5, 1, 1.5].map((temperature) => ({ version: 0, temperature, numSamples: 4, seed: seed0, prompts: 4 })));
    expect(h.policy.greedyCalls).toBe(4); // validation, in-domain test, two OOD splits
    // One ScoreSteps per prompt and temperature, except prompts whose samples all lack steps (m = 2, 3, 4 of 4).
    expect(h.prm.calls).toHaveLength(9);
    expect(h.prm.calls.every((c) => c.aggregation === commonV1.Aggregation.MIN && c.prm?.version === 0 && c.prm.kind === PRM && c.targets === 4)).toBe(true);
    let record = await getRun(h.runStore, runId);
    expect(record).toMatchObject({ state: runV1.RunState.RUNNING, stage: commonV1.Stage.ITERATION, iteration: 1, temperature: 1 });
    expect(await h.client.getTemperature({ runId })).toEqual({ temperature: 1, iteration: 1, mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K, lastSweep: sweep0, lastSweepIteration: 1 });

    // Steps 6-8 of iteration 1; policy-inference only serves v1 a moment after the event.
    await publishEvent(h.bus, runId, datasetReady(runId, 1, 7, 1));
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 1, { createdAt: v1At, trainingExamples: 7 }));
    await new Promise((r) => setTimeout(r, 300));
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')).toHaveLength(1);
    h.policy.served = { runId, version: 1 };
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 2);
    const row1 = {
      ...row0,
      iteration: 1,
      policy: v1,
      temperature: 1,
      greedyAccuracyValidation: 0.5,
      greedyAccuracyInDomain: 0.75,
      greedyAccuracyOutOfDomain: 0.75,
      evalTemperature: 1,
      passAtK: 1,
      rewardPassAtK: 0.75,
      passAtKGap: 0.5,
      datasetSize: 7,
      wallSeconds: 45,
    };
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')[1]).toEqual({ stats: row1 });
    // 0.5 and 1.0 tie on Reward-Pass@2 (0.75): the current temperature 1.0 stays.
    const selected2 = ofKind(runEvents(h, runId), 'temperatureSelected')[1];
    expect(selected2).toMatchObject({ iteration: 2, temperature: 1, swept: true, policy: v1 });
    expect(selected2?.sweep?.rows).toEqual(rows([0.5, 0.75, 0.75, 0.1875], [1, 1, 0.75, 0.25], [1.5, 1, 0.25, 0.25]));
    expect(await getRun(h.runStore, runId)).toMatchObject({ stage: commonV1.Stage.ITERATION, iteration: 2, temperature: 1 });

    // Iteration 2 is the last: v2 is measured at the temperature in use and the run succeeds.
    await publishEvent(h.bus, runId, datasetReady(runId, 2, 5, 1));
    h.policy.served = { runId, version: 2 };
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 2, { createdAt: v2At, trainingExamples: 5 }));
    await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
    const row2 = {
      ...row1,
      iteration: 2,
      policy: v2,
      greedyAccuracyValidation: 0.75,
      greedyAccuracyInDomain: 1,
      greedyAccuracyOutOfDomain: 1,
      passAtK: 1,
      rewardPassAtK: 1,
      passAtKGap: 0.25,
      datasetSize: 5,
      wallSeconds: 20,
    };
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')[2]).toEqual({ stats: row2 });
    expect(ofKind(runEvents(h, runId), 'runFinished')).toEqual([{ state: runV1.RunState.SUCCEEDED, errorMessage: '', summary: [row0, row1, row2] }]);
    expect(h.policy.generateCalls.slice(6)).toEqual([{ version: 2, temperature: 1, numSamples: 4, seed: deriveSeed(7, 'balancer', 2), prompts: 4 }]);
    record = await getRun(h.runStore, runId);
    expect(record).toMatchObject({ state: runV1.RunState.SUCCEEDED, stage: commonV1.Stage.EVALUATION, iteration: 2, temperature: 1 });
    expect(record.finishedAt).toBeInstanceOf(Date);
    expect((await h.client.listIterationStats({ runId })).iterations).toEqual([row0, row1, row2]);
    expect(runEvents(h, runId).map((e) => e.payload?.$case)).toEqual([
      'runStarted',
      'checkpointPublished',
      'prmDataReady',
      'checkpointPublished',
      'iterationEvaluated',
      'temperatureSelected',
      'datasetReady',
      'checkpointPublished',
      'iterationEvaluated',
      'temperatureSelected',
      'datasetReady',
      'checkpointPublished',
      'iterationEvaluated',
      'runFinished',
    ]);

    // Progress: every phase of every split, ending at done = total.
    const v0Phases = new Set(progress.filter((p) => p.iteration === 0 && p.done === p.total).map((p) => `${p.split}:${p.phase}:${p.temperature}`));
    expect([...v0Phases].sort()).toEqual(['test-ood-compose:greedy:0', 'test-ood-style:greedy:0', 'test:greedy:0', 'validation:greedy:0', 'validation:sample:0.5', 'validation:sample:1', 'validation:sample:1.5']);
    expect(progress.every((p) => p.runId === runId && p.stage === 'evaluate')).toBe(true);

    // A redelivered checkpoint event re-publishes the stored events and measures nothing.
    const calls = h.policy.generateCalls.length;
    const before = h.published.length;
    await publishEvent(h.bus, runId, checkpointPublished(runId, PRM, 0, { createdAt: new Date(v0At.getTime() + 5_000), trainingExamples: 2 }), '#redelivered');
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 2, { createdAt: v2At, trainingExamples: 5 }), '#redelivered');
    await until(() => h.published.length === before + 4);
    const again = h.published.slice(before);
    expect(again.map((e) => e.eventId)).toEqual([`run/${runId}/iteration/0/evaluated`, `run/${runId}/iteration/1/temperature`, `run/${runId}/iteration/2/evaluated`, `run/${runId}/finished`]);
    expect(again[0]?.payload).toEqual({ $case: 'iterationEvaluated', value: { stats: row0 } });
    expect(again[1]?.payload).toEqual({ $case: 'temperatureSelected', value: ofKind(runEvents(h, runId), 'temperatureSelected')[0] });
    expect(again[3]?.payload).toEqual({ $case: 'runFinished', value: { state: runV1.RunState.SUCCEEDED, errorMessage: '', summary: [row0, row1, row2] } });
    expect(h.policy.generateCalls).toHaveLength(calls);
  });
});

test('a v0 created before its run (copied from another run) takes no wall time, and v1 counts from the run start', async () => {
  const h = await harness({ script: SCRIPT });
  const runId = 'copied-v0';
  const created = (await startRun(h, runId, (s) => void (s.iterations = 1))).createdAt!.getTime();
  await prepare(h, runId, new Date(created - 600_000));
  await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 1);
  h.policy.served = { runId, version: 1 };
  await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 1, { createdAt: new Date(created + 45_000), trainingExamples: 3 }));
  await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
  expect(ofKind(runEvents(h, runId), 'iterationEvaluated').map((e) => e.stats?.wallSeconds)).toEqual([0, 45]);
});

describe('temperature modes', () => {
  test('PASS_AT_K chooses by Pass@K; the last row is measured at that temperature', async () => {
    const script: PolicyScript = { greedy: () => 1, samples: { 0: SCRIPT.samples[0]!, 1: { 1.5: { m: 2, r: 1 } } } };
    const h = await harness({ script });
    const runId = 'pass-mode';
    await startRun(h, runId, (s) => {
      s.iterations = 1;
      s.temperature!.mode = runV1.TemperatureMode.BALANCER_PASS_AT_K;
    });
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 1);
    expect(ofKind(runEvents(h, runId), 'temperatureSelected')[0]).toMatchObject({ iteration: 1, temperature: 1.5, swept: true, mode: runV1.TemperatureMode.BALANCER_PASS_AT_K });
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')[0]?.stats).toMatchObject({ evalTemperature: 1.5, passAtK: 1, rewardPassAtK: 0.25, passAtKGap: 0.75 });
    h.policy.served = { runId, version: 1 };
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 1, { trainingExamples: 3 }));
    await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')[1]?.stats).toMatchObject({ iteration: 1, temperature: 1.5, evalTemperature: 1.5, passAtK: 0.5, rewardPassAtK: 0.25 });
    expect(h.policy.generateCalls.map((c) => c.temperature)).toEqual([0.5, 1, 1.5, 1.5]);
  });

  test('STATIC samples at static_temperature only and selects it without a sweep; only requested splits are measured', async () => {
    const h = await harness({ script: { greedy: () => 2, samples: { 0: { 0.7: { m: 3, r: 1 } } } }, env: { SCORE_CONCURRENCY: '2' } });
    h.prm.delayMs = 30;
    const runId = 'static-mode';
    await startRun(h, runId, (s) => {
      s.temperature!.mode = runV1.TemperatureMode.STATIC;
      s.temperature!.staticTemperature = 0.7;
      s.evaluation!.splits = [runV1.TestSplit.IN_DOMAIN];
    });
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 1);
    expect(ofKind(runEvents(h, runId), 'temperatureSelected')).toEqual([
      { iteration: 1, temperature: 0.7, mode: runV1.TemperatureMode.STATIC, swept: false, sweep: undefined, policy: { runId, kind: POLICY, version: 0 } },
    ]);
    const stats = ofKind(runEvents(h, runId), 'iterationEvaluated')[0]?.stats;
    expect(stats).toMatchObject({ evalTemperature: 0.7, passAtK: 0.75, rewardPassAtK: 0.25, greedyAccuracyValidation: 0.5, greedyAccuracyInDomain: 0.5 });
    expect(stats?.greedyAccuracyOutOfDomain).toBeUndefined();
    expect(h.policy.generateCalls.map((c) => c.temperature)).toEqual([0.7]);
    expect(h.policy.greedyCalls).toBe(2);
    // The harness scores the prompts at once (3 have responses with steps); SCORE_CONCURRENCY holds them to 2 calls in flight.
    expect(h.prm.calls).toHaveLength(3);
    expect(h.prm.maxInFlight).toBe(2);
    expect(await h.client.getTemperature({ runId })).toMatchObject({ temperature: 0.7, iteration: 1, lastSweep: undefined, lastSweepIteration: 0 });
  });

  test('between retunes the temperature carries over without a sweep', async () => {
    const h = await harness({ script: SCRIPT });
    const runId = 'carry';
    await startRun(h, runId, (s) => {
      s.iterations = 3;
      s.temperature!.retuneEvery = 2;
    });
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 1);
    h.policy.served = { runId, version: 1 };
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 1, { trainingExamples: 3 }));
    await until(() => ofKind(runEvents(h, runId), 'temperatureSelected').length === 2);
    expect(ofKind(runEvents(h, runId), 'temperatureSelected')[1]).toMatchObject({ iteration: 2, temperature: 1, swept: false, sweep: undefined });
    expect(h.policy.generateCalls.map((c) => [c.version, c.temperature])).toEqual([[0, 0.5], [0, 1], [0, 1.5], [1, 1]]);
    // The last sweep is still the one before iteration 1.
    expect(await h.client.getTemperature({ runId })).toMatchObject({ temperature: 1, iteration: 2, lastSweepIteration: 1 });
  });
});

describe('failures and cancellation', () => {
  test('a non-retryable error fails the run with the message and RunFinished(FAILED)', async () => {
    const h = await harness({ script: SCRIPT });
    const runId = 'bad-request';
    await startRun(h, runId);
    h.policy.failWith = status.INVALID_ARGUMENT;
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
    const run = await getRun(h.runStore, runId);
    expect(run.state).toBe(runV1.RunState.FAILED);
    expect(run.errorMessage).toMatch(/^evaluating policy v0: .*scripted failure/);
    expect(ofKind(runEvents(h, runId), 'runFinished')).toEqual([{ state: runV1.RunState.FAILED, errorMessage: run.errorMessage, summary: [] }]);
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')).toEqual([]);
  });

  test('a transient error is retried by redelivery, and the last delivery fails the run', async () => {
    const h = await harness({ script: SCRIPT, extra: { maxDeliver: 2 } });
    const runId = 'flaky';
    await startRun(h, runId);
    h.policy.failWith = status.RESOURCE_EXHAUSTED;
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
    expect(h.policy.greedyCalls).toBe(2); // one validation greedy pass per delivery
    expect((await getRun(h.runStore, runId)).errorMessage).toMatch(/RESOURCE_EXHAUSTED/);
  });

  test('a version that is never served fails the run after VERSION_WAIT', async () => {
    const h = await harness({ script: SCRIPT, env: { VERSION_WAIT: '300ms' } });
    const runId = 'never-served';
    await startRun(h, runId);
    h.prm.served = undefined;
    await prepare(h, runId, new Date());
    await until(() => ofKind(runEvents(h, runId), 'runFinished').length === 1);
    expect((await getRun(h.runStore, runId)).errorMessage).toMatch(/policy v0 and prm v0 are not both served: .*PRM version 0 of run never-served was not served within 300 ms/);
  });

  test('cancelling a run aborts its in-flight evaluation; later checkpoints of it are ignored', async () => {
    const h = await harness({ script: SCRIPT });
    const runId = 'cancel-mid';
    await startRun(h, runId);
    h.policy.delayMs = 5_000;
    await prepare(h, runId, new Date());
    await until(() => h.policy.generateCalls.length === 1);
    const started = Date.now();
    await h.client.cancelRun({ runId, reason: 'stop' });
    // The checkpoint consumer is free again long before the 5 s answer: the next event is handled.
    await publishEvent(h.bus, runId, checkpointPublished(runId, POLICY, 1, { trainingExamples: 3 }));
    await until(async () => (await h.artifacts.exists(`runs/${runId}/balancer/policy-v1.json`)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(h.policy.generateCalls).toHaveLength(1);
    expect(ofKind(runEvents(h, runId), 'iterationEvaluated')).toEqual([]);
    expect((await getRun(h.runStore, runId)).state).toBe(runV1.RunState.CANCELLED);
  });

  test('an undecodable event is dead-lettered and counted, not retried', async () => {
    const metrics = createMetrics({ service: 'balancer-test', defaultMetrics: false });
    const h = await harness({ extra: { metrics } });
    await h.bus.publish('mstar.events.junk.checkpoint_published', new Uint8Array([0xff, 0xff, 0xff]), { msgId: 'junk' });
    const rejected = async (): Promise<number | undefined> =>
      (await metrics.registry.getSingleMetric('mstar_balancer_events_rejected_total')?.get())?.values.find((v) => v.labels['reason'] === 'undecodable')?.value;
    // Both consumers (all events, and checkpoints) reject it once.
    await until(async () => (await rejected()) === 2);
    await new Promise((r) => setTimeout(r, 700));
    expect(await rejected()).toBe(2);
  });
});
