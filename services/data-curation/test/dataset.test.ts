import { commonV1, eventsV1, runV1, type curationV1 } from '@mstar/contracts';
import { withAnswerHint } from '@mstar/cot';
import { InvalidArgumentError } from '@mstar/errors';
import { createRng, deriveSeed } from '@mstar/metrics';
import { decodeDatasetRecords, runItems } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceAnswers, distinctCandidates, passesChainCheck, type SampleCandidate } from '../src/dataset.js';
import { cancelRun, getRun, policyRef, specOf, startHarness, temperatureSelected, WRONG, type Harness, type PolicyScript } from './fixture.js';

const spec = specOf();
const pool = runItems(spec.world, 'pool');
const indexOf = new Map(pool.map((item, i) => [item.id, i]));

/**
 * The samples of the first slice (pool 0-2), as step scores (`p=<score>` per step) of correct
 * answers, or null for a wrong answer. Pool 1's sample 0 is correct without any step. Every other
 * prompt: sample 0 correct with one step scored 0.5.
 */
const SAMPLES: Record<number, (number[] | null)[]> = {
  0: [[0.88, 0.86], [0.6, 1.0], [0.8], [1.0, 0.75]],
  1: [[], null, null, null],
  2: [null, [0.3, 0.9], [0.5], null],
};

const script: PolicyScript = (prompt, s) => {
  const index = indexOf.get(prompt.promptId) as number;
  const scores = (SAMPLES[index] ?? [[0.5], null, null, null])[s];
  if (scores === null || scores === undefined) return `p=0.99\n\n# Answer\n\n${WRONG}`;
  return [...scores.map((p) => `p=${p}`), '# Answer', pool[index]!.answer].join('\n\n');
};

const isDatasetReady = (runId: string, iteration: number) => (e: eventsV1.Event): boolean =>
  e.runId === runId && e.payload?.$case === 'datasetReady' && e.payload.value.dataset?.iteration === iteration;

async function buildOne(h: Harness, runId: string, over: Record<string, unknown>, temperature = 0.7): Promise<{ stats: commonV1.DatasetStats; records: curationV1.DatasetRecord[] }> {
  await h.startRun(runId, specOf(over));
  await h.publish(runId, temperatureSelected(runId, 1, temperature));
  const event = await h.waitFor(isDatasetReady(runId, 1), `DatasetReady of ${runId}`);
  const stats = event.payload?.$case === 'datasetReady' ? event.payload.value.dataset : undefined;
  if (stats === undefined) throw new Error('DatasetReady without stats');
  return { stats, records: decodeDatasetRecords(await h.artifacts.get(stats.artifactKey)) };
}

/** [pool index, sample index, prm score] of each record. */
const picks = (records: readonly curationV1.DatasetRecord[]): [number, number, number][] => records.map((r) => [indexOf.get(r.promptId) as number, r.sampleIndex, r.prmScore]);

describe('iteration datasets', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script });
  });
  afterAll(async () => {
    await h.close();
  });

  it('PRM top-1 with min aggregation: samples, verifies, scores the correct ones, and reports the stats', async () => {
    const { stats, records } = await buildOne(h, 'top1-min', { selection: { rule: 'PRM_TOP_K', k: 1 }, aggregation: 'MIN' });
    expect(picks(records)).toEqual([
      [0, 0, 0.86],
      [1, 0, 0],
      [2, 2, 0.5],
    ]);
    expect(records.every((r) => r.temperature === 0.7 && r.policy?.version === 0 && r.policy.kind === commonV1.CheckpointKind.POLICY)).toBe(true);
    expect(records[0]?.response).toBe(`p=0.88\n\np=0.86\n\n# Answer\n\n${pool[0]!.answer}`);
    const key = runArtifacts('top1-min').dataset(1);
    expect({ ...stats, createdAt: undefined }).toEqual({
      iteration: 1,
      promptsTried: 3,
      promptsWithCorrect: 3,
      samplesGenerated: 12,
      correctSamples: 7,
      checkedSamples: 7,
      promptsSolvedGreedily: 0,
      promptsRationalized: 0,
      keptSamples: 3,
      meanPrmScore: (0.86 + 0 + 0.5) / 3,
      temperature: 0.7,
      policy: policyRef('top1-min', 0),
      artifactKey: key,
      poolStart: 0,
      createdAt: undefined,
    });
    expect(await h.artifacts.exists(runArtifacts('top1-min').complete(key))).toBe(true);

    // Sampling: K = 4 at T, pinned to v0, the iteration seed, PROMPTS_PER_CALL = 2 prompts per call.
    const generate = h.policy.requests.filter((r) => r.policy?.runId === 'top1-min');
    expect(generate.map((r) => r.prompts.map((p) => indexOf.get(p.promptId))).sort()).toEqual([[0, 1], [2]]);
    for (const r of generate) {
      expect(r).toMatchObject({ numSamples: 4, temperature: 0.7, topP: 1, maxNewTokens: 24, seed: deriveSeed(7, 'iteration', 1), policy: policyRef('top1-min', 0) });
    }
    // Scoring: only correct answers with steps, pinned to prm v0, with the spec's aggregation; images sent only for prompts scored.
    // (Two chunks are in flight at once, so the calls may arrive in either order.)
    const scored = h.prm.requests.filter((r) => r.prm?.runId === 'top1-min').sort((a, b) => a.prompts[0]!.promptId.localeCompare(b.prompts[0]!.promptId));
    expect(scored.map((r) => [r.prompts.map((p) => indexOf.get(p.promptId)), r.targets.length])).toEqual([
      [[0], 4],
      [[2], 2],
    ]);
    for (const r of scored) expect(r).toMatchObject({ aggregation: commonV1.Aggregation.MIN, prm: { runId: 'top1-min', kind: commonV1.CheckpointKind.PRM, version: 0 } });
    expect(await h.metricValue('mstar_curation_samples_kept_total')).toBe(3);
    // Progress after each chunk (they finish in either order), ending at 3 of 3.
    const progress = h.progress.filter((p) => p.runId === 'top1-min');
    expect(progress.map((p) => p.done)).toHaveLength(3);
    expect(progress[0]).toMatchObject({ stage: 'dataset', iteration: 1, done: 0, total: 3 });
    expect(progress.at(-1)).toMatchObject({ done: 3, total: 3, etaMs: 0 });
  });

  it.each([
    ['MEAN', [[0, 3, 0.875], [1, 0, 0], [2, 1, 0.6]]],
    ['LAST', [[0, 1, 1], [1, 0, 0], [2, 1, 0.9]]],
    ['PRODUCT', [[0, 2, 0.8], [1, 0, 0], [2, 2, 0.5]]],
  ] as const)('PRM top-1 with %s aggregation ranks by that aggregate', async (aggregation, expected) => {
    const runId = `top1-${aggregation.toLowerCase()}`;
    const { records } = await buildOne(h, runId, { selection: { rule: 'PRM_TOP_K', k: 1 }, aggregation });
    const got = picks(records);
    expect(got.map(([p, s]) => [p, s])).toEqual(expected.map(([p, s]) => [p, s]));
    got.forEach(([, , score], i) => expect(score).toBeCloseTo(expected[i]![2], 12));
    expect(h.prm.requests.filter((r) => r.prm?.runId === runId).every((r) => r.aggregation === commonV1.Aggregation[aggregation])).toBe(true);
  });

  it('PRM top-2 keeps the two best per prompt in sample order', async () => {
    const { stats, records } = await buildOne(h, 'top2-min', { selection: { rule: 'PRM_TOP_K', k: 2 } });
    expect(picks(records)).toEqual([
      [0, 0, 0.86],
      [0, 2, 0.8],
      [1, 0, 0],
      [2, 1, 0.3],
      [2, 2, 0.5],
    ]);
    expect(stats.keptSamples).toBe(5);
    expect(stats.meanPrmScore).toBeCloseTo((0.86 + 0.8 + 0 + 0.3 + 0.5) / 5, 12);
  });

  it('PRM threshold keeps correct samples scored strictly above alpha', async () => {
    const { stats, records } = await buildOne(h, 'threshold', { selection: { rule: 'PRM_THRESHOLD', alpha: 0.75 } });
    // 0.75 itself (pool 0, sample 3) is not above alpha; pool 1's stepless answer scores 0.
    expect(picks(records)).toEqual([
      [0, 0, 0.86],
      [0, 2, 0.8],
    ]);
    expect(stats.meanPrmScore).toBeCloseTo(0.83, 12);
  });

  it('all-correct keeps every correct sample without scoring', async () => {
    const { stats, records } = await buildOne(h, 'all-correct', { selection: { rule: 'ALL_CORRECT' } });
    expect(picks(records)).toEqual([
      [0, 0, 0],
      [0, 1, 0],
      [0, 2, 0],
      [0, 3, 0],
      [1, 0, 0],
      [2, 1, 0],
      [2, 2, 0],
    ]);
    expect(stats).toMatchObject({ keptSamples: 7, correctSamples: 7, meanPrmScore: 0 });
    expect(h.prm.requests.filter((r) => r.prm?.runId === 'all-correct')).toEqual([]);
  });

  it('random-k draws k correct samples per prompt from the seeded selection stream, without scoring', async () => {
    const { stats, records } = await buildOne(h, 'random-2', { selection: { rule: 'RANDOM_K', k: 2 } });
    const drawn = createRng(deriveSeed(7, 'selection', 1, pool[0]!.id))
      .sample([0, 1, 2, 3], 2)
      .sort((a, b) => a - b);
    expect(picks(records)).toEqual([
      [0, drawn[0], 0],
      [0, drawn[1], 0],
      [1, 0, 0],
      [2, 1, 0],
      [2, 2, 0],
    ]);
    expect(stats).toMatchObject({ keptSamples: 5, meanPrmScore: 0 });
    expect(h.prm.requests.filter((r) => r.prm?.runId === 'random-2')).toEqual([]);
  });

  it('cycles the pool cursor through the pool across iterations', async () => {
    const runId = 'cycle';
    await h.startRun(runId, specOf({ selection: { rule: 'ALL_CORRECT' } }));
    expect(await h.curation.getPoolCursor({ runId })).toEqual({ position: 0, poolSize: 8, interval: 3, nextIteration: 1, passes: 0 });
    const cursors = [];
    for (const iteration of [1, 2, 3]) {
      await h.publish(runId, temperatureSelected(runId, iteration, 1.0));
      await h.waitFor(isDatasetReady(runId, iteration), `DatasetReady ${iteration}`);
      cursors.push(await h.curation.getPoolCursor({ runId }));
    }
    expect(cursors).toEqual([
      { position: 3, poolSize: 8, interval: 3, nextIteration: 2, passes: 0 },
      { position: 6, poolSize: 8, interval: 3, nextIteration: 3, passes: 0 },
      { position: 1, poolSize: 8, interval: 3, nextIteration: 4, passes: 1 },
    ]);
    const third = await h.curation.getDataset({ runId, iteration: 3 });
    expect(third.dataset).toMatchObject({ poolStart: 6, promptsTried: 3, policy: policyRef(runId, 2), temperature: 1 });
    const records = await h.curation.streamRecords({ runId, iteration: 3 });
    // The slice wraps: pool 6, 7, then 0 (whose four samples are all correct).
    expect(records.map((r) => [indexOf.get(r.promptId), r.sampleIndex])).toEqual([
      [6, 0],
      [7, 0],
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
    ]);
    expect(h.policy.requests.filter((r) => r.policy?.runId === runId).map((r) => r.policy?.version)).toEqual([0, 0, 1, 1, 2, 2]);
    const listed = await h.curation.listDatasets({ runId });
    expect(listed.datasets.map((d) => [d.iteration, d.poolStart])).toEqual([
      [1, 0],
      [2, 3],
      [3, 6],
    ]);
  });

  it('ignores events of a run that ended', async () => {
    await h.startRun('ended', spec);
    await cancelRun(h.runStore, 'ended');
    const before = h.policy.requests.length;
    await h.publish('ended', temperatureSelected('ended', 1, 1));
    await expect.poll(() => h.metricValue('mstar_curation_events_ignored_total', { reason: 'run-ended' })).toBe(1);
    expect(h.policy.requests.length).toBe(before);
    expect(await h.artifacts.exists(runArtifacts('ended').dataset(1))).toBe(false);
  });

  it('aborts a stage in flight when its run is cancelled, and writes nothing', async () => {
    await h.startRun('cancel-mid', spec);
    let release: () => void = () => undefined;
    h.policy.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const called = h.policy.nextCall();
    await h.publish('cancel-mid', temperatureSelected('cancel-mid', 1, 1));
    await called;
    await cancelRun(h.runStore, 'cancel-mid');
    await expect.poll(() => h.metricValue('mstar_curation_events_ignored_total', { reason: 'cancelled' })).toBe(1);
    h.policy.hold = undefined;
    release();
    const keys = runArtifacts('cancel-mid');
    expect(await h.artifacts.exists(keys.complete(keys.dataset(1)))).toBe(false);
    expect((await getRun(h.runStore, 'cancel-mid')).state).toBe(runV1.RunState.CANCELLED);
    expect(h.events.some(isDatasetReady('cancel-mid', 1))).toBe(false);
  });

  it.each([
    ['a policy other than v(i-1)', 'bad-policy', temperatureSelected('bad-policy', 1, 1, 3), 'temperature_selected.policy'],
    ['an iteration beyond the run', 'bad-iteration', temperatureSelected('bad-iteration', 9, 1), 'temperature_selected.iteration'],
    ['a temperature of 0', 'bad-temperature', temperatureSelected('bad-temperature', 1, 0), 'temperature_selected.temperature'],
  ] as const)('marks the run FAILED for %s', async (_what, runId, payload, field) => {
    await h.startRun(runId, spec);
    await h.publish(runId, payload);
    await expect.poll(async () => (await getRun(h.runStore, runId)).state).toBe(runV1.RunState.FAILED);
    expect((await getRun(h.runStore, runId)).errorMessage).toContain(field);
    expect(await h.artifacts.exists(runArtifacts(runId).dataset(1))).toBe(false);
  });

  it('dead-letters and counts an event that cannot be decoded', async () => {
    await h.bus.publish('mstar.events.junk.temperature_selected', new Uint8Array([0xff, 0xff, 0xff, 0x01]), { msgId: 'junk-1' });
    // A well-formed event of another kind on this subject is no TemperatureSelected either.
    const wrongKind = eventsV1.Event.encode({ eventId: 'run/junk/finished', runId: 'junk', occurredAt: new Date(), source: 't', payload: { $case: 'runFinished', value: { state: 3, errorMessage: '', summary: [] } } }).finish();
    await h.bus.publish('mstar.events.junk.temperature_selected', wrongKind, { msgId: 'junk-2' });
    await expect.poll(() => h.metricValue('mstar_curation_events_rejected_total', { reason: 'undecodable' })).toBe(2);
  });
});

describe('crash safety', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script });
  });
  afterAll(async () => {
    await h.close();
  });

  it('re-publishes DatasetReady without sampling when the dataset is complete, and redoes a partial one byte for byte', async () => {
    const runId = 'redo';
    const first = await buildOne(h, runId, { selection: { rule: 'RANDOM_K', k: 2 } });
    const keys = runArtifacts(runId);
    const bytes = Buffer.from(await h.artifacts.get(keys.dataset(1)));

    await h.restart();
    const calls = h.policy.requests.length;
    await h.publish(runId, temperatureSelected(runId, 1, 0.7));
    const again = await h.waitFor(isDatasetReady(runId, 1), 'DatasetReady re-published');
    expect(again.payload?.$case === 'datasetReady' ? again.payload.value.dataset : undefined).toEqual(first.stats);
    expect(h.policy.requests.length).toBe(calls);
    expect(await h.metricValue('mstar_curation_outputs_republished_total', { stage: 'dataset' })).toBe(1);

    // A crash halfway through the write: data truncated, marker missing.
    await h.artifacts.delete(keys.complete(keys.dataset(1)));
    await h.artifacts.put(keys.dataset(1), bytes.subarray(0, 30));
    await h.restart();
    await h.publish(runId, temperatureSelected(runId, 1, 0.7));
    const redone = await h.waitFor(isDatasetReady(runId, 1), 'DatasetReady redone');
    expect(h.policy.requests.length).toBeGreaterThan(calls);
    expect(Buffer.from(await h.artifacts.get(keys.dataset(1))).equals(bytes)).toBe(true);
    const stats = redone.payload?.$case === 'datasetReady' ? redone.payload.value.dataset : undefined;
    expect({ ...stats, createdAt: undefined }).toEqual({ ...first.stats, createdAt: undefined });
  });
});

/**
 * Under a selection.chain_check, per prompt: sample 0 is the gold chain; sample 1 the gold chain
 * with a count of something the question does not name, false of any image, before it; sample 2 a wrong answer; sample 3
 * the gold answer after a step off the templates. Samples 0, 1 and 3 match the gold answer. The
 * greedy answer (temperature 0) is the gold chain, except pool 1's, which is sample 1; asked with
 * the question hinted by the gold answer, every sample is the gold chain.
 */
const chains: PolicyScript = (prompt, s, request) => {
  const index = indexOf.get(prompt.promptId) as number;
  const item = pool[index]!;
  const gold = item.response as string;
  if (prompt.question !== item.question) return gold;
  if (request.temperature === 0) return index === 1 ? `the number of shapes is 99.\n\n${gold}` : gold;
  return [gold, `the number of shapes is 99.\n\n${gold}`, `p=0.9\n\n# Answer\n\n${WRONG}`, `p=0.9\n\n# Answer\n\n${item.answer}`][s] as string;
};

describe('iteration datasets with a chain check', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script: chains });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each(['CONSISTENT', 'IMAGE'])('%s keeps only the matched samples whose chain passes, and counts both', async (check) => {
    const runId = `checked-${check.toLowerCase()}`;
    const { stats, records } = await buildOne(h, runId, { selection: { rule: 'ALL_CORRECT', chain_check: check } });
    expect(picks(records)).toEqual([
      [0, 0, 0],
      [1, 0, 0],
      [2, 0, 0],
    ]);
    expect(stats).toMatchObject({ promptsWithCorrect: 3, correctSamples: 9, checkedSamples: 3, keptSamples: 3 });
  });

  it('scores only the samples that pass under PRM top-k', async () => {
    const { stats } = await buildOne(h, 'consistent-top2', { selection: { rule: 'PRM_TOP_K', k: 2, chain_check: 'CONSISTENT' } });
    expect(stats).toMatchObject({ correctSamples: 9, checkedSamples: 3, keptSamples: 3 });
    expect(h.prm.requests.filter((r) => r.prm?.runId === 'consistent-top2').flatMap((r) => r.targets)).toHaveLength(3);
  });

  it('passesChainCheck: the IMAGE control on an item without its scene is an InvalidArgument naming the prompt', () => {
    const { scene: _scene, ...item } = pool[0]!;
    const gold = item.response as string;
    expect(passesChainCheck(runV1.ChainCheck.IMAGE, pool[0]!, gold)).toBe(true);
    expect(passesChainCheck(runV1.ChainCheck.UNSPECIFIED, item, 'anything')).toBe(true);
    expect(() => passesChainCheck(runV1.ChainCheck.IMAGE, item, gold)).toThrow(InvalidArgumentError);
    expect(() => passesChainCheck(runV1.ChainCheck.IMAGE, item, gold)).toThrow(`IMAGE needs the image's ground truth, which prompt ${item.id} has not`);
  });

  it('selection.rationalize hints a prompt whose greedy answer matches but fails the check, unless unsolved_only holds it back', async () => {
    const over = { warmup: { hinted: true }, selection: { rule: 'ALL_CORRECT', chain_check: 'CONSISTENT', greedy_first: true, rationalize: true } };
    const hinted = (runId: string) => h.policy.requests.filter((r) => r.policy?.runId === runId && r.prompts.some((p) => p.question !== pool[indexOf.get(p.promptId) as number]!.question));
    // Pools 0 and 2 keep their greedy gold chain; pool 1's greedy chain fails the check, so it is
    // sampled 4 times with the hint and keeps those gold chains, sampled at T.
    const { stats, records } = await buildOne(h, 'rationalize-greedy-failed', over);
    expect(records.map((r) => [indexOf.get(r.promptId), r.sampleIndex, r.hinted, r.temperature])).toEqual([[0, 0, false, 0], [1, 0, true, 0.7], [1, 1, true, 0.7], [1, 2, true, 0.7], [1, 3, true, 0.7], [2, 0, false, 0]]);
    expect(stats).toMatchObject({ promptsSolvedGreedily: 3, promptsRationalized: 1, samplesGenerated: 7, correctSamples: 7, checkedSamples: 6, keptSamples: 6 });
    expect(hinted('rationalize-greedy-failed').flatMap((r) => r.prompts.map((p) => indexOf.get(p.promptId)))).toEqual([1]);
    // Under unsolved_only a prompt answered greedily offers nothing, so it is not hinted either.
    const held = await buildOne(h, 'rationalize-unsolved-only', { ...over, selection: { ...over.selection, unsolved_only: true } });
    expect(held.records).toEqual([]);
    expect(held.stats).toMatchObject({ promptsSolvedGreedily: 3, promptsRationalized: 0, keptSamples: 0 });
    expect(hinted('rationalize-unsolved-only')).toEqual([]);
  });

  it('keeps every matched sample with no chain check', async () => {
    const { stats } = await buildOne(h, 'unchecked', { selection: { rule: 'ALL_CORRECT' } });
    expect(stats).toMatchObject({ correctSamples: 9, checkedSamples: 9, keptSamples: 9 });
  });
});

/**
 * Every prompt of the whole pool (8 prompts, one iteration): samples 0 and 1 the same correct
 * answer scored 0.9, sample 2 a correct one scored 0.5, sample 3 wrong, except that pool 4's sample
 * 3 is correct (0.7) and pools 1, 2, 3 and 5 are always wrong. Pool 0 and 7 are the only prompts of
 * their (family, answer) pairs, pools 4 and 6 share one (count-both, 3). The greedy answer
 * (temperature 0) is right for pools 0 and 4 only. Asked with the question hinted by the gold
 * answer, pools 1 and 2 answer right in samples 0 (0.8) and 1 (0.6), every other prompt wrong.
 */
const repeats: PolicyScript = (prompt, s, request) => {
  const index = indexOf.get(prompt.promptId) as number;
  if (prompt.question === withAnswerHint(pool[index]!.question, pool[index]!.answer)) {
    const hinted = [1, 2].includes(index) ? [0.8, 0.6][s] : undefined;
    return `p=${hinted ?? 0.99}\n\n# Answer\n\n${hinted === undefined ? WRONG : pool[index]!.answer}`;
  }
  if (request.temperature === 0) return `p=0.9\n\n# Answer\n\n${[0, 4].includes(index) ? pool[index]!.answer : WRONG}`;
  const answer = [1, 2, 3, 5].includes(index) ? WRONG : pool[index]!.answer;
  const score = [0.9, 0.9, 0.5, index === 4 ? 0.7 : null][s];
  return score === null || score === undefined ? `p=0.99\n\n# Answer\n\n${WRONG}` : `p=${score}\n\n# Answer\n\n${answer}`;
};

describe('iteration datasets with distinct responses and balanced answers', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script: repeats });
  });
  afterAll(async () => {
    await h.close();
  });

  it('the fixture: pools 4 and 6 share a family and gold answer, pools 0 and 7 are alone in theirs', () => {
    const key = (i: number) => `${pool[i]!.family}/${pool[i]!.answer}`;
    expect(key(4)).toBe(key(6));
    expect(new Set([0, 4, 7].map(key)).size).toBe(3);
    expect(pool.filter((_, i) => key(i) === key(0) || key(i) === key(7))).toHaveLength(2);
  });

  it('PRM top-2 keeps a repeated response twice, and once under selection.distinct', async () => {
    const whole = { interval_fraction: 1 };
    const repeated = await buildOne(h, 'top2-repeats', { ...whole, selection: { rule: 'PRM_TOP_K', k: 2 } });
    expect(picks(repeated.records).map(([p, s]) => [p, s])).toEqual([[0, 0], [0, 1], [4, 0], [4, 1], [6, 0], [6, 1], [7, 0], [7, 1]]);
    const distinct = await buildOne(h, 'top2-distinct', { ...whole, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true } });
    expect(picks(distinct.records)).toEqual([[0, 0, 0.9], [0, 2, 0.5], [4, 0, 0.9], [4, 3, 0.7], [6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9], [7, 2, 0.5]]);
    expect(distinct.stats).toMatchObject({ promptsTried: 8, samplesGenerated: 32, correctSamples: 13, checkedSamples: 13, keptSamples: 8 });
    // Both score each distinct correct response once: 13 correct samples are 9 texts.
    const scoredTexts = (runId: string) => h.prm.requests.filter((r) => r.prm?.runId === runId).flatMap((r) => r.targets.map((t) => `${r.prompts[t.promptIndex]!.promptId}/${t.response}`));
    for (const runId of ['top2-repeats', 'top2-distinct']) {
      expect(scoredTexts(runId)).toHaveLength(9);
      expect(new Set(scoredTexts(runId)).size).toBe(9);
    }
  });

  it('selection.balance_answers caps each (family, answer) pair at its share of the prompts, keeping the hardest prompts and best scores', async () => {
    const { stats, records } = await buildOne(h, 'top2-balanced', { interval_fraction: 1, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, balance_answers: true } });
    // 8 kept of 8 prompts: a pair of one prompt keeps ceil(8 / 8) = 1, (count-both, 3) keeps 2,
    // those of pool 6, which matched 3 of 4 where pool 4 matched all 4.
    expect(picks(records)).toEqual([[0, 0, 0.9], [6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9]]);
    expect(stats).toMatchObject({ correctSamples: 13, keptSamples: 4 });
    expect(stats.meanPrmScore).toBeCloseTo((0.9 * 3 + 0.5) / 4, 12);
  });

  it('selection.unsolved_only keeps nothing of the prompts the policy already answers greedily, and counts them', async () => {
    const runId = 'top2-unsolved';
    const { stats, records } = await buildOne(h, runId, { interval_fraction: 1, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, unsolved_only: true } });
    // Pools 0 and 4 are answered right greedily; of the other prompts only 6 and 7 have correct samples.
    expect(picks(records)).toEqual([[6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9], [7, 2, 0.5]]);
    expect(stats).toMatchObject({ promptsTried: 8, samplesGenerated: 32, correctSamples: 13, checkedSamples: 13, promptsSolvedGreedily: 2, keptSamples: 4 });
    // One pinned greedy answer for every prompt, and only the responses of prompts 6 and 7 scored.
    const greedy = h.policy.requests.filter((r) => r.policy?.runId === runId && r.temperature === 0);
    expect(greedy.flatMap((r) => r.prompts.map((p) => indexOf.get(p.promptId)))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(greedy.every((r) => r.numSamples === 1 && r.policy?.version === 0)).toBe(true);
    const scored = h.prm.requests.filter((r) => r.prm?.runId === runId).flatMap((r) => r.targets.map((t) => indexOf.get(r.prompts[t.promptIndex]!.promptId)));
    expect(scored).toEqual([6, 6, 7, 7]);
  });

  it('selection.greedy_first samples only the prompts the policy gets wrong greedily; one it answers offers its greedy answer', async () => {
    const runId = 'top2-greedy-first';
    const { stats, records } = await buildOne(h, runId, { interval_fraction: 1, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, greedy_first: true } });
    // Pools 0 and 4 keep their greedy answer (sample 0, at temperature 0); 6 and 7 their two distinct sampled ones.
    expect(picks(records)).toEqual([[0, 0, 0.9], [4, 0, 0.9], [6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9], [7, 2, 0.5]]);
    expect(records.map((r) => r.temperature)).toEqual([0, 0, 0.7, 0.7, 0.7, 0.7]);
    expect(records.every((r) => r.response.startsWith(`p=${r.prmScore}`) && r.policy?.version === 0)).toBe(true);
    // 6 prompts x 4 samples and 2 greedy answers; of the samples those of 6 and 7 match 3 times each.
    expect(stats).toMatchObject({ promptsTried: 8, promptsWithCorrect: 4, samplesGenerated: 26, correctSamples: 8, checkedSamples: 8, promptsSolvedGreedily: 2, keptSamples: 6 });
    const requests = h.policy.requests.filter((r) => r.policy?.runId === runId);
    // Two calls are in flight, so only the set of prompts asked is fixed, not their order.
    const asked = (temperature: number) => requests.filter((r) => r.temperature === temperature).flatMap((r) => r.prompts.map((p) => indexOf.get(p.promptId) as number)).sort((a, b) => a - b);
    expect(asked(0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(asked(0.7)).toEqual([1, 2, 3, 5, 6, 7]);
    expect(requests.every((r) => r.numSamples === (r.temperature === 0 ? 1 : 4))).toBe(true);
    // Every correct candidate is scored, the greedy answers included.
    const scored = h.prm.requests.filter((r) => r.prm?.runId === runId).flatMap((r) => r.targets.map((t) => indexOf.get(r.prompts[t.promptIndex]!.promptId) as number));
    expect(scored.sort((a, b) => a - b)).toEqual([0, 4, 6, 6, 7, 7]);
  });

  it('selection.greedy_first with balance_answers thins the greedy answers of a pair before the samples of the prompts answered wrong', async () => {
    const { records } = await buildOne(h, 'top2-greedy-first-balanced', { interval_fraction: 1, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, balance_answers: true, greedy_first: true } });
    // 6 kept of 8 prompts: (count-both, 3) of pools 4 and 6 keeps ceil(6 * 2 / 8) = 2, pool 6's
    // samples and not pool 4's greedy answer; pool 7 alone keeps 1.
    expect(picks(records)).toEqual([[0, 0, 0.9], [6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9]]);
  });

  it('selection.greedy_first with unsolved_only samples the same prompts and keeps nothing of those answered greedily', async () => {
    const { stats, records } = await buildOne(h, 'top2-greedy-first-unsolved', { interval_fraction: 1, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, greedy_first: true, unsolved_only: true } });
    expect(picks(records)).toEqual([[6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9], [7, 2, 0.5]]);
    expect(stats).toMatchObject({ samplesGenerated: 26, promptsSolvedGreedily: 2, keptSamples: 4 });
  });

  it('selection.rationalize samples the prompts left without a verified candidate again, hinted, and keeps their matches under the plain question', async () => {
    const runId = 'top2-greedy-first-rationalized';
    const { stats, records } = await buildOne(h, runId, { interval_fraction: 1, warmup: { hinted: true }, selection: { rule: 'PRM_TOP_K', k: 2, distinct: true, greedy_first: true, rationalize: true } });
    // greedy_first's records, and the two hinted matches each of pools 1 and 2, sampled at T.
    expect(picks(records)).toEqual([[0, 0, 0.9], [1, 0, 0.8], [1, 1, 0.6], [2, 0, 0.8], [2, 1, 0.6], [4, 0, 0.9], [6, 0, 0.9], [6, 2, 0.5], [7, 0, 0.9], [7, 2, 0.5]]);
    expect(records.map((r) => [r.hinted, r.temperature])).toEqual([[false, 0], [true, 0.7], [true, 0.7], [true, 0.7], [true, 0.7], [false, 0], [false, 0.7], [false, 0.7], [false, 0.7], [false, 0.7]]);
    // Pools 1, 2, 3 and 5 sampled 4 more times each; 4 of those 16 samples match. prompts_with_correct counts unaided answers only.
    expect(stats).toMatchObject({ promptsTried: 8, promptsWithCorrect: 4, samplesGenerated: 42, correctSamples: 12, checkedSamples: 12, promptsSolvedGreedily: 2, promptsRationalized: 4, keptSamples: 10 });
    const hintedRequests = h.policy.requests.filter((r) => r.policy?.runId === runId && r.prompts.some((p) => p.question.includes('# Answer:')));
    const hintedAsked = hintedRequests.flatMap((r) => r.prompts.map((p) => indexOf.get(p.promptId) as number)).sort((a, b) => a - b);
    expect(hintedAsked).toEqual([1, 2, 3, 5]);
    for (const r of hintedRequests) {
      expect(r).toMatchObject({ numSamples: 4, temperature: 0.7, seed: deriveSeed(7, 'rationalize', 1), policy: policyRef(runId, 0) });
      for (const p of r.prompts) expect(p.question).toBe(withAnswerHint(pool[indexOf.get(p.promptId) as number]!.question, pool[indexOf.get(p.promptId) as number]!.answer));
    }
    // The hinted matches are scored under the plain question.
    const scoredPrompts = h.prm.requests.filter((r) => r.prm?.runId === runId).flatMap((r) => r.prompts);
    expect(scoredPrompts.map((p) => indexOf.get(p.promptId) as number).sort((a, b) => a - b)).toEqual([0, 1, 2, 4, 6, 7]);
    for (const p of scoredPrompts) expect(p.question).toBe(pool[indexOf.get(p.promptId) as number]!.question);
  });

  const candidate = (sampleIndex: number, text: string, score = 0): SampleCandidate => ({ sampleIndex, text, correct: true, score });

  it('distinctCandidates keeps the first sample of each text, in input order', () => {
    const [a, b, c, d] = [candidate(0, 'x'), candidate(1, 'y'), candidate(2, 'x'), candidate(3, 'z')];
    expect(distinctCandidates([a, b, c, d])).toEqual([a, b, d]);
    expect(distinctCandidates([])).toEqual([]);
  });

  it('balanceAnswers thins only the pairs over their share, and leaves a balanced slice alone', () => {
    const item = (answer: string, family = 'count') => ({ family, answer });
    const two = (score: number) => [candidate(0, 'a', score), candidate(1, 'b', score / 2)];
    // 6 kept of 4 prompts: pair (count, 0) has 3 prompts, so at most ceil(6 * 3 / 4) = 5; the
    // other pairs have one prompt each and keep at most ceil(6 / 4) = 2.
    const prompts = [
      { item: item('0'), matched: 8, solved: false, kept: two(0.9) },
      { item: item('0'), matched: 2, solved: false, kept: two(0.4) },
      { item: item('0'), matched: 8, solved: false, kept: two(0.8) },
      { item: item('4'), matched: 0, solved: false, kept: [] },
    ];
    const balanced = balanceAnswers(prompts);
    // Prompt 1 matched fewest and keeps both; of the two prompts matched 8 times, the lowest score goes.
    expect(balanced.map((kept) => kept.map((c) => c.score))).toEqual([[0.9, 0.45], [0.4, 0.2], [0.8], []]);
    // The same answer in another family is another pair.
    const families = [
      { item: item('0'), matched: 8, solved: false, kept: two(0.9) },
      { item: item('0', 'compare'), matched: 8, solved: false, kept: two(0.9) },
    ];
    expect(balanceAnswers(families)).toEqual(families.map((p) => p.kept));
    // The samples of a prompt answered greedily are thinned first, however few of its samples matched.
    const greedy = [
      { item: item('0'), matched: 1, solved: true, kept: [candidate(0, 'g', 0.9)] },
      { item: item('0'), matched: 8, solved: false, kept: two(0.8) },
      { item: item('4'), matched: 0, solved: false, kept: [] },
    ];
    // 3 kept of 3 prompts: (count, 0) keeps at most ceil(3 * 2 / 3) = 2.
    expect(balanceAnswers(greedy).map((kept) => kept.map((c) => c.score))).toEqual([[], [0.8, 0.4], []]);
    expect(balanceAnswers([])).toEqual([]);
  });
});
