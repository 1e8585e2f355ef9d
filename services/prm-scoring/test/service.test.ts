import { status } from '@grpc/grpc-js';
import { commonV1, type prmV1 } from '@mstar/contracts';
import { formatCot, splitSteps } from '@mstar/cot';
import { aggregate } from '@mstar/metrics';
import { expandImageTokens, stepBoundaries, TINY_CONFIG } from '@mstar/models';
import { promptIds, type EvalItem } from '@mstar/recipes';
import type { Session } from '@mstar/runtime';
import { createMetrics, type Metrics } from '@mstar/telemetry';
import { createWorldTokenizer, decodePng } from '@mstar/world';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPrmClient, prepareRows, prmScorer, scoringBatch, startPrmScoring, stepScores, type PrmClient, type RunningPrmScoring } from '../src/index.js';
import {
  directPrm,
  directSession,
  failure,
  gate,
  prompt,
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
let service: RunningPrmScoring;
let client: PrmClient;
let metrics: Metrics;
let direct: Session;
const log: RunLog = { runs: [], gate: undefined, unloads: [] };

beforeAll(async () => {
  artifacts = await tempArtifacts();
  const prefix = await writeCheckpoint(artifacts.store, 0);
  metrics = createMetrics({ service: 'prm-scoring-test', defaultMetrics: false });
  service = await startPrmScoring({
    config: testConfig({ INITIAL_CHECKPOINT: prefix, MAX_BATCH_RESPONSES: '4', MAX_QUEUE: '2', MAX_TARGETS: '12', MAX_IMAGE_BYTES: '8192', MAX_QUESTION_CHARS: '1000' }),
    artifacts: artifacts.store,
    logger: silentLogger,
    metrics,
    wrapLoader: recordingLoader(log),
  });
  await service.ready;
  client = createPrmClient(`127.0.0.1:${service.port}`, { retry: false });
  direct = await directSession(0);
});

afterAll(async () => {
  client.close();
  await service.close();
  await direct.release();
  await artifacts.cleanup();
});

const MIN = commonV1.Aggregation.MIN;

function request(targets: readonly { promptIndex: number; response: string }[], extra: Partial<prmV1.ScoreStepsRequest> = {}): Partial<prmV1.ScoreStepsRequest> {
  return { prompts: [prompt(0), prompt(1, 'are there more red circles or blue squares?')], targets: [...targets], aggregation: MIN, ...extra };
}

/** Responses in the order the service batches them (longest first), so one direct run sees the same batch. */
const byLength = (() => {
  const tokenizer = createWorldTokenizer();
  return [...RESPONSES].sort((a, b) => tokenizer.encode(b).length - tokenizer.encode(a).length);
})();

describe('scores', () => {
  test('equal a direct in-thread run of the scoring graph on the same batch, read at the step boundaries', async () => {
    const req = request(byLength.map((response, i) => ({ promptIndex: i % 2, response })));
    const answer = await client.scoreSteps(req);
    expect(answer.prm).toEqual({ runId: RUN_ID, kind: commonV1.CheckpointKind.PRM, version: 0 });

    const rows = await prepareRows(req as prmV1.ScoreStepsRequest, directPrm(direct, 0));
    const batch = scoringBatch(rows);
    const expected = stepScores((await direct.run(batch.feeds, ['scores']))['scores']?.data as Float32Array, batch);
    expect(answer.scores.map((s) => s.stepScores)).toEqual(expected);
    expect(answer.scores.map((s) => s.stepCount)).toEqual(byLength.map((r) => splitSteps(r).length));
    for (const s of answer.scores) for (const x of s.stepScores) expect(x > 0 && x < 1).toBe(true);
    // The scores spread (the fixture's weights are scaled), so equality above is not 0.5 == 0.5.
    expect(new Set(answer.scores.flatMap((s) => s.stepScores.map((x) => x.toFixed(3)))).size).toBeGreaterThan(4);

    // Each response alone: the same numbers up to float rounding (the batch's padding changes nothing).
    for (const [i, row] of rows.entries()) {
      const single = scoringBatch([row]);
      const alone = stepScores((await direct.run(single.feeds, ['scores']))['scores']?.data as Float32Array, single)[0] ?? [];
      alone.forEach((x, k) => expect(answer.scores[i]?.stepScores[k]).toBeCloseTo(x, 5));
    }
  });

  test('are the scores at the ends of the steps of the full response (the answer block cannot change them)', async () => {
    const tokenizer = createWorldTokenizer();
    const response = RESPONSES[0] as string;
    const [score] = (await client.scoreSteps(request([{ promptIndex: 0, response }]))).scores;
    // The whole response, answer block included, through the graph on this thread.
    const ids = tokenizer.encode(response);
    const sequence = [...expandImageTokens(promptIds(tokenizer, prompt(0).question), TINY_CONFIG), ...ids];
    const rows = await prepareRows(request([{ promptIndex: 0, response }]) as prmV1.ScoreStepsRequest, directPrm(direct, 0));
    const batch = scoringBatch(rows);
    const full = {
      ...batch.feeds,
      input_ids: { type: 'int64' as const, dims: [1, sequence.length], data: BigInt64Array.from(sequence, BigInt) },
      attention_mask: { type: 'int64' as const, dims: [1, sequence.length], data: new BigInt64Array(sequence.length).fill(1n) },
    };
    const scores = (await direct.run(full, ['scores']))['scores']?.data as Float32Array;
    const offset = sequence.length - ids.length;
    const separators = stepBoundaries(ids, tokenizer.stepSeparatorId);
    const steps = splitSteps(response).length;
    // Steps 1..n-1 end at their separator; step n at its own last token, just before the next separator.
    const ends = [...separators.slice(0, steps - 1), (separators[steps - 1] as number) - 1];
    ends.forEach((end, k) => expect(score?.stepScores[k]).toBeCloseTo(scores[offset + end] as number, 5));
  });

  test('aggregate by each kind of the contract', async () => {
    const targets = RESPONSES.map((response) => ({ promptIndex: 0, response }));
    const kinds: [commonV1.Aggregation, 'min' | 'mean' | 'last' | 'product'][] = [
      [commonV1.Aggregation.MIN, 'min'],
      [commonV1.Aggregation.MEAN, 'mean'],
      [commonV1.Aggregation.LAST, 'last'],
      [commonV1.Aggregation.PRODUCT, 'product'],
    ];
    const byKind = new Map<string, number>();
    for (const [kind, how] of kinds) {
      const { scores } = await client.scoreSteps(request(targets, { aggregation: kind }));
      for (const s of scores) expect(s.aggregateScore).toBe(aggregate(s.stepScores, how));
      byKind.set(how, scores[1]?.aggregateScore ?? Number.NaN);
    }
    // The second response's last step scores above its first: the four reductions differ.
    expect(new Set(byKind.values()).size).toBe(4);
    expect(byKind.get('product')).toBeLessThan(byKind.get('min') as number);
  });
});

describe('batching', () => {
  test('one forward pass per response: a request of 10 is split into runs of at most MAX_BATCH_RESPONSES', async () => {
    const before = log.runs.length;
    const targets = Array.from({ length: 10 }, (_, i) => ({ promptIndex: Math.floor(i / 5), response: RESPONSES[i % RESPONSES.length] as string }));
    const { scores } = await client.scoreSteps(request(targets));
    expect(log.runs.slice(before).map((r) => r.rows)).toEqual([4, 4, 2]);
    // In request order, with the prompt ids of the targets' prompts; equal responses of one prompt score equally.
    expect(scores.map((s) => [s.targetIndex, s.promptId])).toEqual(targets.map((t, i) => [i, `p-${t.promptIndex}`]));
    expect(scores[4]?.stepScores).toEqual(scores[0]?.stepScores);
    // The same response under the other prompt's image and question scores differently.
    expect(scores[8]?.stepScores).not.toEqual(scores[0]?.stepScores);
  });

  test('waiting requests share a run, each gets its own scores in its own order, and the queue is bounded', async () => {
    const a = request([2, 1, 0].map((i) => ({ promptIndex: 0, response: RESPONSES[i] as string })));
    const b = request([0, 3].map((i) => ({ promptIndex: 1, response: RESPONSES[i] as string })));
    const aloneA = await client.scoreSteps(a);
    const aloneB = await client.scoreSteps(b);

    const held = gate();
    log.gate = held.promise;
    const before = log.runs.length;
    // The blocker's run waits at the gate and holds the only worker; A and B queue behind it.
    const blocker = client.scoreSteps(request([{ promptIndex: 0, response: RESPONSES[3] as string }]));
    await until(() => log.runs.length > before);
    const pending = [client.scoreSteps(a), client.scoreSteps(b)];
    const depth = async (): Promise<number> => (await metrics.registry.getSingleMetric('mstar_prm_queue_depth')?.get())?.values[0]?.value ?? 0;
    await until(async () => (await depth()) === 2);
    // MAX_QUEUE = 2: a third waiting request is refused at once.
    const refused = await failure(() => client.scoreSteps(b));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    held.open();
    log.gate = undefined;
    const [sharedA, sharedB] = await Promise.all(pending);
    await blocker;

    // Blocker alone, then A's 3 rows with B's first, then B's last.
    expect(log.runs.slice(before).map((r) => r.rows)).toEqual([1, 4, 1]);
    for (const [shared, alone] of [
      [sharedA, aloneA],
      [sharedB, aloneB],
    ] as const) {
      expect(shared?.scores.map((s) => [s.targetIndex, s.promptId, s.stepCount])).toEqual(alone.scores.map((s) => [s.targetIndex, s.promptId, s.stepCount]));
      shared?.scores.forEach((s, i) => s.stepScores.forEach((x, k) => expect(x).toBeCloseTo(alone.scores[i]?.stepScores[k] as number, 5)));
    }
  });
});

describe('bad input is INVALID_ARGUMENT naming the field', () => {
  const ok = { promptIndex: 0, response: RESPONSES[0] as string };
  const longSteps = formatCot(Array.from({ length: 60 }, () => 'three.'), '3');
  const cases: [string, Partial<prmV1.ScoreStepsRequest>, string][] = [
    ['no prompts', { prompts: [] }, 'prompts'],
    ['more prompts than MAX_TARGETS', { prompts: Array.from({ length: 13 }, (_, i) => prompt(i)) }, 'prompts'],
    ['empty image', { prompts: [{ ...prompt(0), image: Buffer.alloc(0) }] }, 'prompts[0].image'],
    ['oversized image', { prompts: [{ ...prompt(0), image: Buffer.alloc(8193, 1) }] }, 'prompts[0].image'],
    ['undecodable image', { prompts: [prompt(0), { ...prompt(1), image: Buffer.from('this is not an image') }] }, 'prompts[1].image'],
    ['empty question', { prompts: [prompt(0), prompt(1, ' \n ')] }, 'prompts[1].question'],
    ['question over the character limit', { prompts: [prompt(0, 'x'.repeat(1001))] }, 'prompts[0].question'],
    ['question longer than the context', { prompts: [prompt(0, Array.from({ length: 120 }, () => 'red').join(' '))] }, 'prompts[0].question'],
    ['no targets', { targets: [] }, 'targets'],
    ['more targets than MAX_TARGETS', { targets: Array.from({ length: 13 }, () => ok) }, 'targets'],
    ['prompt index out of range', { targets: [ok, { promptIndex: 2, response: 'a.' }] }, 'targets[1].prompt_index'],
    ['empty response', { targets: [ok, ok, { promptIndex: 0, response: '' }] }, 'targets[2].response'],
    ['blank response', { targets: [{ promptIndex: 1, response: ' \n\n \t\n\n' }] }, 'targets[0].response'],
    ['only an answer, no step', { targets: [ok, { promptIndex: 0, response: '# Answer\n\n3' }] }, 'targets[1].response'],
    ['response too long for the context', { targets: [ok, ok, ok, { promptIndex: 1, response: longSteps }] }, 'targets[3].response'],
    ['aggregation unset', { aggregation: commonV1.Aggregation.UNSPECIFIED }, 'aggregation'],
    ['unknown aggregation', { aggregation: 9 as commonV1.Aggregation }, 'aggregation'],
    ['a pinned policy checkpoint', { prm: { runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 0 } }, 'prm.kind'],
  ];
  test.each(cases)('%s', async (_name, override, field) => {
    const runs = log.runs.length;
    const err = await failure(() => client.scoreSteps(request([ok], override)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details.startsWith(`${field} `)).toBe(true);
    // Refused before any graph run: no made-up or partial score.
    expect(log.runs.length).toBe(runs);
  });

  test('an unknown pinned version or another run is NOT_FOUND', async () => {
    const unknown = await failure(() => client.scoreSteps(request([ok], { prm: { runId: RUN_ID, kind: commonV1.CheckpointKind.PRM, version: 7 } })));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toContain('PRM version 7 is not loaded');
    const otherRun = await failure(() => client.scoreSteps(request([ok], { prm: { runId: 'other-run', kind: commonV1.CheckpointKind.PRM, version: 0 } })));
    expect(otherRun.code).toBe(status.NOT_FOUND);
    // The served version pinned explicitly (kind left unset) is fine.
    const pinned = await client.scoreSteps(request([ok], { prm: { runId: RUN_ID, kind: commonV1.CheckpointKind.UNSPECIFIED, version: 0 } }));
    expect(pinned.prm?.version).toBe(0);
  });
});

describe('prmScorer', () => {
  const item: EvalItem = { id: 'item-1', family: 'count', question: prompt(0).question, image: decodePng(prompt(0).image), answer: '3' };

  test('scores responses with steps through the service and ranks the step-less ones last with -Infinity', async () => {
    const responses = [RESPONSES[0] as string, '', RESPONSES[2] as string, '# Answer\n\n3', '\n\n'];
    const scorer = prmScorer(client, { aggregation: commonV1.Aggregation.MEAN });
    const scores = await scorer(item, responses);
    const direct = await client.scoreSteps({ prompts: [prompt(0)], targets: [0, 2].map((i) => ({ promptIndex: 0, response: responses[i] as string })), aggregation: commonV1.Aggregation.MEAN });
    expect(scores).toEqual([direct.scores[0]?.aggregateScore, Number.NEGATIVE_INFINITY, direct.scores[1]?.aggregateScore, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });

  test('makes no call when no response has a step, and passes the pin', async () => {
    const calls: Partial<prmV1.ScoreStepsRequest>[] = [];
    const fake = {
      scoreSteps: (req: Partial<prmV1.ScoreStepsRequest>) => {
        calls.push(req);
        return client.scoreSteps(req);
      },
    };
    const pin = { runId: RUN_ID, kind: commonV1.CheckpointKind.PRM, version: 0 };
    const scorer = prmScorer(fake, { aggregation: MIN, prm: pin });
    expect(await scorer(item, ['', '# Answer\n\n2'])).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(calls).toHaveLength(0);
    const [score] = await scorer(item, [RESPONSES[1] as string]);
    expect(calls[0]?.prm).toEqual(pin);
    expect(score).toBeGreaterThan(0);
    await expect(prmScorer(client, { aggregation: MIN, prm: { ...pin, version: 3 } })(item, [RESPONSES[1] as string])).rejects.toMatchObject({ code: status.NOT_FOUND });
  });
});

test('GetModelInfo describes the loaded PRM', async () => {
  const info = await client.getModelInfo();
  expect(info.prm).toEqual({ runId: RUN_ID, kind: commonV1.CheckpointKind.PRM, version: 0 });
  expect(info.model).toEqual({
    preset: commonV1.ModelPreset.TINY,
    parameterCount: 37_985,
    contextLength: 128,
    vocabSize: 380,
    hiddenSize: 32,
    numLayers: 2,
    numAttentionHeads: 4,
    imageSize: 32,
    imageTokens: 16,
  });
  expect(info.executionProvider).toBe('cpu');
  expect(info.loadedAt).toBeInstanceOf(Date);
});
