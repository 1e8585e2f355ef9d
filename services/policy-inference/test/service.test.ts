import { status } from '@grpc/grpc-js';
import { commonV1, policyV1 } from '@mstar/contracts';
import { createMetrics, type Metrics } from '@mstar/telemetry';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodePng } from '@mstar/world';
import { createPolicyClient, remoteSampler, startPolicyInference, waitForPolicyVersion, type PolicyClient, type RunningPolicyInference } from '../src/index.js';
import { decoderProbe, failure, pngImage, prompt, RUN_ID, silentLogger, tempArtifacts, testConfig, until, writeCheckpoint, type TempArtifacts } from './fixture.js';

let artifacts: TempArtifacts;
let service: RunningPolicyInference;
let client: PolicyClient;
let metrics: Metrics;

const decoder = decoderProbe();

beforeAll(async () => {
  artifacts = await tempArtifacts();
  const prefix = await writeCheckpoint(artifacts.store, 0);
  metrics = createMetrics({ service: 'policy-inference-test', defaultMetrics: false });
  service = await startPolicyInference({
    config: testConfig({ INITIAL_CHECKPOINT: prefix, MAX_SAMPLES: '8', MAX_IMAGE_BYTES: '8192', MAX_QUESTION_CHARS: '1000', MAX_PROMPTS: '4' }),
    artifacts: artifacts.store,
    logger: silentLogger,
    metrics,
    wrapLoader: decoder.wrap,
  });
  await service.ready;
  client = createPolicyClient(`127.0.0.1:${service.port}`, { retry: false });
});

afterAll(async () => {
  client.close();
  await service.close();
  await artifacts.cleanup();
});

const base: policyV1.GenerateRequest = {
  prompts: [prompt(0)],
  numSamples: 2,
  temperature: 1,
  topP: 0.9,
  maxNewTokens: 8,
  seed: 1,
  policy: undefined,
};

async function collect(request: Partial<policyV1.GenerateRequest>): Promise<policyV1.Completion[]> {
  const out: policyV1.Completion[] = [];
  for await (const c of client.generate({ ...base, ...request })) out.push(c);
  return out;
}

/** texts keyed by `prompt/sample`. */
function byKey(completions: readonly policyV1.Completion[]): Map<string, string> {
  return new Map(completions.map((c) => [`${c.promptId}/${c.sampleIndex}`, c.text]));
}

describe('bad input is INVALID_ARGUMENT naming the field', () => {
  const longWords = Array.from({ length: 120 }, () => 'red').join(' ');
  const cases: [string, Partial<policyV1.GenerateRequest>, string][] = [
    ['no prompts', { prompts: [] }, 'prompts'],
    ['too many prompts', { prompts: [0, 1, 2, 3, 4].map((i) => prompt(i)) }, 'prompts'],
    ['undecodable image', { prompts: [prompt(0), { ...prompt(1), image: Buffer.from('this is not an image') }] }, 'prompts[1].image'],
    ['empty image', { prompts: [{ ...prompt(0), image: Buffer.alloc(0) }] }, 'prompts[0].image'],
    ['oversized image', { prompts: [{ ...prompt(0), image: Buffer.alloc(8193, 1) }] }, 'prompts[0].image'],
    ['empty question', { prompts: [prompt(0), prompt(1), prompt(2, '  ')] }, 'prompts[2].question'],
    ['question over the character limit', { prompts: [prompt(0, 'x'.repeat(1001))] }, 'prompts[0].question'],
    ['question longer than the context', { prompts: [prompt(0, longWords)] }, 'prompts[0].question'],
    ['K = 0', { numSamples: 0 }, 'num_samples'],
    ['K above the limit', { numSamples: 9 }, 'num_samples'],
    ['negative temperature', { temperature: -0.1 }, 'temperature'],
    ['NaN temperature', { temperature: Number.NaN }, 'temperature'],
    ['infinite temperature', { temperature: Number.POSITIVE_INFINITY }, 'temperature'],
    ['top-p 0', { topP: 0 }, 'top_p'],
    ['top-p above 1', { topP: 1.5 }, 'top_p'],
    ['max new tokens 0', { maxNewTokens: 0 }, 'max_new_tokens'],
    ['max new tokens past the context', { maxNewTokens: 120 }, 'max_new_tokens'],
    ['response prefix over the character limit', { prompts: [{ ...prompt(0), responsePrefix: 'x'.repeat(1001) }] }, 'prompts[0].response_prefix'],
    ['response prefix longer than the context', { prompts: [{ ...prompt(0), responsePrefix: longWords }] }, 'prompts[0].response_prefix'],
  ];
  test.each(cases)('%s', async (_name, request, field) => {
    const err = await failure(() => collect(request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details.startsWith(`${field} `) || err.details.startsWith(`${field}:`)).toBe(true);
  });

  test('greedy decoding checks its inputs the same way', async () => {
    const err = await failure(() => client.generateGreedy({ prompts: [prompt(0)], maxNewTokens: 0 }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^max_new_tokens /);
    const bad = await failure(() => client.generateGreedy({ prompts: [{ ...prompt(0), image: Buffer.from('nope') }], maxNewTokens: 4 }));
    expect(bad.details).toMatch(/^prompts\[0\]\.image /);
  });

  test('an unknown pinned version or another run is NOT_FOUND', async () => {
    const unknown = await failure(() => collect({ policy: { runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 7 } }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toContain('policy version 7 is not loaded');
    const otherRun = await failure(() => collect({ policy: { runId: 'other-run', kind: commonV1.CheckpointKind.POLICY, version: 0 } }));
    expect(otherRun.code).toBe(status.NOT_FOUND);
  });
});

/** Requests waiting for a wave, from the service's own gauge. */
async function queueDepth(): Promise<number> {
  return (await metrics.registry.getSingleMetric('mstar_policy_queue_depth')?.get())?.values[0]?.value ?? 0;
}

/** Waves that batched more than one request, from the service's own histogram. */
async function multiRequestWaves(): Promise<number> {
  // Histogram values carry the series name (_bucket, _count, _sum), which prom-client's type omits.
  const values = ((await metrics.registry.getSingleMetric('mstar_policy_wave_requests')?.get())?.values ?? []) as {
    metricName?: string;
    labels: Record<string, string | number>;
    value: number;
  }[];
  const count = values.find((v) => v.metricName === 'mstar_policy_wave_requests_count')?.value ?? 0;
  const single = values.find((v) => v.metricName === 'mstar_policy_wave_requests_bucket' && v.labels['le'] === 1)?.value ?? 0;
  return count - single;
}

describe('Generate', () => {
  test('streams every (prompt, sample) once, in the order sequences finish', async () => {
    const prompts = [prompt(10), prompt(11), prompt(12)];
    const completions = await collect({ prompts, numSamples: 8, maxNewTokens: 60, temperature: 1, topP: 1, seed: 5 });
    expect(completions).toHaveLength(24);
    expect(new Set(completions.map((c) => `${c.promptIndex}/${c.sampleIndex}`)).size).toBe(24);
    for (const c of completions) {
      expect(c.promptId).toBe(prompts[c.promptIndex]?.promptId);
      expect(c.policy).toEqual({ runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 0 });
      if (c.finishReason === policyV1.FinishReason.LENGTH) expect(c.tokenCount).toBe(60);
      else expect(c.finishReason === policyV1.FinishReason.EOS && c.tokenCount <= 60).toBe(true);
    }
    // One token per step for every live row: a sequence that stops earlier is streamed no later.
    const counts = completions.map((c) => c.tokenCount);
    expect(counts).toEqual([...counts].sort((x, y) => x - y));
    expect(completions.some((c) => c.finishReason === policyV1.FinishReason.EOS)).toBe(true);
    expect(completions.some((c) => c.finishReason === policyV1.FinishReason.LENGTH)).toBe(true);
  });

  test('the same seed gives the same samples, also when batched with another caller', async () => {
    const request = { prompts: [prompt(20), prompt(21)], numSamples: 4, maxNewTokens: 12, temperature: 1, topP: 0.95, seed: 42 };
    const alone = byKey(await collect(request));
    const wavesBefore = await multiRequestWaves();
    // The blocker holds the only wave slot (its decoder steps wait at the gate), so the next two
    // requests queue behind it and share one wave once the gate opens.
    const release = decoder.hold();
    const blocker = collect({ ...request, prompts: [prompt(23), prompt(24), prompt(25)], numSamples: 8, maxNewTokens: 60 });
    await until(() => decoder.waiting() > 0);
    const both = Promise.all([collect(request), collect({ ...request, seed: 43 })]);
    await until(async () => (await queueDepth()) === 2);
    release();
    const [[again, other]] = await Promise.all([both, blocker]);
    expect(await multiRequestWaves()).toBe(wavesBefore + 1);
    expect(byKey(again)).toEqual(alone);
    expect(byKey(other)).not.toEqual(alone);
    // Samples of one prompt differ from each other at T = 1.
    expect(new Set([0, 1, 2, 3].map((s) => alone.get(`p-20/${s}`))).size).toBeGreaterThan(1);
  });

  test('temperature 0 gives K identical samples, equal to GenerateGreedy, which answers in request order', async () => {
    const prompts = [prompt(30), prompt(31), prompt(32)];
    const sampled = await collect({ prompts, numSamples: 3, temperature: 0, maxNewTokens: 10 });
    const greedy = await client.generateGreedy({ prompts, maxNewTokens: 10 });
    expect(greedy.map((c) => [c.promptIndex, c.promptId, c.sampleIndex])).toEqual([
      [0, 'p-30', 0],
      [1, 'p-31', 0],
      [2, 'p-32', 0],
    ]);
    for (const c of sampled) expect(c.text).toBe(greedy[c.promptIndex]?.text);
  });
});

describe('response prefixes and the client helpers', () => {
  test('a prefix is continued with sample streams of its own, deterministically', async () => {
    const request = { numSamples: 4, maxNewTokens: 12, temperature: 1, topP: 1, seed: 8 };
    const withPrefix = (responsePrefix: string) => collect({ ...request, prompts: [{ ...prompt(40), responsePrefix }] });
    const a = byKey(await withPrefix('there are 2 red circles .\n\n'));
    expect(byKey(await withPrefix('there are 2 red circles .\n\n'))).toEqual(a);
    expect(byKey(await withPrefix('there are 3 red circles .\n\n'))).not.toEqual(a);
    expect(byKey(await withPrefix(''))).not.toEqual(a);
  });

  test('remoteSampler answers the evaluation harness in [item][sample] order', async () => {
    const items = [40, 41].map((i) => ({ id: `item-${i}`, family: 'count', question: 'how many red circles are there?', image: decodePng(pngImage(i)), answer: '2' }));
    const sampler = remoteSampler(client);
    const sampled = await sampler({ items, temperature: 1, numSamples: 3, topP: 1, maxNewTokens: 8, seed: 3 });
    expect(sampled.map((s) => s.length)).toEqual([3, 3]);
    const greedy = await sampler({ items, temperature: 0, numSamples: 1, topP: 1, maxNewTokens: 8, seed: 3 });
    const direct = await client.generateGreedy({ prompts: items.map((it, i) => ({ ...prompt(40 + i), promptId: it.id })), maxNewTokens: 8 });
    expect(greedy.map((g) => g[0]?.text)).toEqual(direct.map((c) => c.text));
    // Greedy calls take the client's generation (streaming) deadline, not its unary one.
    const hasty = createPolicyClient(`127.0.0.1:${service.port}`, { retry: false, deadlineMs: 1 });
    try {
      await expect(hasty.getModelInfo()).rejects.toThrow(/DEADLINE_EXCEEDED/);
      expect((await remoteSampler(hasty)({ items, temperature: 0, numSamples: 1, topP: 1, maxNewTokens: 8, seed: 3 })).map((g) => g[0]?.text)).toEqual(
        direct.map((c) => c.text),
      );
      await expect(hasty.generateGreedy({ prompts: [prompt(40)], maxNewTokens: 8 }, { deadlineMs: 1 })).rejects.toThrow(/DEADLINE_EXCEEDED/);
    } finally {
      hasty.close();
    }
  });

  test('waitForPolicyVersion resolves for a served version and times out for a missing one', async () => {
    await waitForPolicyVersion(client, { runId: RUN_ID, version: 0 }, { timeoutMs: 1_000 });
    await expect(waitForPolicyVersion(client, { runId: RUN_ID, version: 5 }, { timeoutMs: 300, intervalMs: 50 })).rejects.toThrow(/v5 was not served within 300 ms \(serving/);
  });
});

test('GetModelInfo describes the loaded policy', async () => {
  const info = await client.getModelInfo();
  expect(info.policy).toEqual({ runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, version: 0 });
  expect(info.model).toEqual({
    preset: commonV1.ModelPreset.TINY,
    parameterCount: 50_112,
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
