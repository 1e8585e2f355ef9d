import { EVENT_STREAM, EVENT_STREAM_SUBJECTS, type eventsV1 } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { decodeDatasetRecords, decodePrmData, runItems } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import { createNatsRunStore } from '@mstar/stores';
import { startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, specOf, startHarness, temperatureSelected, warmupPublished, WRONG, type Harness, type PolicyScript } from './fixture.js';

const spec = specOf();
const pool = runItems(spec.world, 'pool');
const gold = new Map(pool.map((item) => [item.id, item.answer]));
/** Two steps; even samples and rollouts reach the gold answer. */
const script: PolicyScript = (prompt, s) => {
  const answer = s % 2 === 0 ? (gold.get(prompt.promptId) as string) : WRONG;
  return prompt.responsePrefix === '' ? `p=0.${s + 1}\n\np=0.9\n\n# Answer\n\n${answer}` : `# Answer\n\n${answer}`;
};

describe('over a real nats-server (JetStream bus, NATS KV run store)', () => {
  let nats: NatsServerHandle;
  let bus: EventBus;
  let h: Harness;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await createJetStreamBus({ servers: nats.url, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] }, logger: silentLogger });
    const runStore = await createNatsRunStore({ servers: nats.url, bucket: 'mstar-runs-test' });
    h = await startHarness({ script, bus, runStore });
  });
  afterAll(async () => {
    await h?.close();
    await bus?.close();
    await nats?.stop();
  });

  it('builds the PRM data and a dataset from JetStream events', async () => {
    await h.startRun('js-1', spec);
    await h.publish('js-1', warmupPublished('js-1'));
    const prm = await h.waitFor((e) => e.runId === 'js-1' && e.payload?.$case === 'prmDataReady', 'PrmDataReady');
    // Each sample has 2 steps: step 1 labelled by 4 rollouts (indices 0 and 2 reach the answer), step 2 by its own correctness.
    expect(prm.payload?.value).toMatchObject({ prompts: 2, trajectories: 6, labelledSteps: 12, rollouts: 4 * 6, meanStepLabel: (6 * 0.5 + 4 * 1) / 12 });
    const trajectories = decodePrmData(await h.artifacts.get(runArtifacts('js-1').prmData));
    expect(trajectories.map((t) => t.stepLabels)).toEqual([[0.5, 1], [0.5, 0], [0.5, 1], [0.5, 1], [0.5, 0], [0.5, 1]]);

    await h.publish('js-1', temperatureSelected('js-1', 1, 0.8));
    const ready = await h.waitFor((e) => e.runId === 'js-1' && e.payload?.$case === 'datasetReady', 'DatasetReady');
    const stats = ready.payload?.$case === 'datasetReady' ? ready.payload.value.dataset : undefined;
    // Top-1 by min score among the correct samples 0 and 2 (min 0.1 and 0.3): sample 2 everywhere.
    expect(stats).toMatchObject({ iteration: 1, promptsTried: 3, promptsWithCorrect: 3, samplesGenerated: 12, correctSamples: 6, keptSamples: 3, temperature: 0.8 });
    expect(stats?.meanPrmScore).toBeCloseTo(0.3, 12);
    const records = decodeDatasetRecords(await h.artifacts.get(runArtifacts('js-1').dataset(1)));
    expect(records.map((r) => [r.promptId, r.sampleIndex])).toEqual([0, 1, 2].map((i) => [pool[i]!.id, 2]));
  });

  it('a stage stopped by a shutdown is redone by the next instance from the redelivered event', async () => {
    await h.startRun('js-2', spec);
    let release: () => void = () => undefined;
    h.policy.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const called = h.policy.nextCall();
    await h.publish('js-2', temperatureSelected('js-2', 1, 1));
    await called;
    const restarted = h.restart();
    h.policy.hold = undefined;
    release();
    await restarted;
    const ready = await h.waitFor((e) => e.runId === 'js-2' && e.payload?.$case === 'datasetReady', 'DatasetReady after the restart');
    expect(ready.payload?.$case === 'datasetReady' ? ready.payload.value.dataset?.keptSamples : undefined).toBe(3);
    expect(h.events.filter((e: eventsV1.Event) => e.runId === 'js-2' && e.payload?.$case === 'datasetReady')).toHaveLength(1);
  });
});
