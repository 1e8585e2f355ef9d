import { InvalidArgumentError } from '@mstar/errors';
import { ONNX_FILES, TINY_CONFIG, buildPrefix, mergeImageFeatures } from '@mstar/models';
import { createSessionPool, type PlainTensor } from '@mstar/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationCancelledError, decoderLayout, generate, poolRunner, type GenerateRequest, type GeneratedSequence, type GenerationPrompt } from '../src/index.js';
import { loadTinyModel, recordingRunner, textPrompt, tinyModelFiles, type TinyModel } from './fixture.js';

const { pad, eos, image } = TINY_CONFIG.tokens;
const HIDDEN = TINY_CONFIG.text.hiddenSize;

let model: TinyModel;
beforeAll(async () => {
  model = await loadTinyModel();
});
afterAll(async () => {
  await model.release();
});

const tokens = (sequences: readonly (readonly GeneratedSequence[])[]): number[][][] => sequences.map((s) => s.map((q) => [...q.tokens]));
const prompts3 = [{ inputIds: textPrompt(3, 1) }, { inputIds: textPrompt(9, 2) }, { inputIds: textPrompt(6, 3) }];
const base = { temperature: 0, maxNewTokens: 12, eosId: [] as number[], padId: pad } satisfies Partial<GenerateRequest>;

function pixels(seed: number): PlainTensor {
  const data = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37 + seed * 1.7));
  return { type: 'float32', dims: [1, 3, 32, 32], data };
}

describe('decoderLayout', () => {
  it('reads layers, KV heads, head dim and hidden size from the decoder inputs', () => {
    expect(decoderLayout(model.sessions.decoder.inputs)).toEqual({ layers: 2, kvHeads: 2, headDim: 8, hidden: 32 });
  });

  it('refuses a decoder without a KV cache', () => {
    expect(() => decoderLayout([{ name: 'input_ids', type: 'int64', dims: ['batch', 'seq'] }])).toThrow(/past_key_values/);
  });
});

describe('generate: cache vs full recomputation', () => {
  it('greedy with the KV cache equals greedy by full recomputation, token for token, on a left-padded batch', async () => {
    const cached = await generate(model.runner, { ...base, prompts: prompts3 });
    const full = await generate(model.runner, { ...base, prompts: prompts3, useKvCache: false });
    expect(tokens(cached.sequences)).toEqual(tokens(full.sequences));
    expect(cached.sequences.flat().every((s) => s.tokens.length === 12 && s.finishReason === 'max_new_tokens')).toBe(true);
    // The prompts lead to different continuations: the test would notice rows getting mixed up.
    expect(new Set(cached.sequences.map((s) => JSON.stringify(s[0]?.tokens))).size).toBe(3);
    // And padding is invisible: each prompt alone (no padding) gives the same tokens.
    for (const [i, prompt] of prompts3.entries()) {
      const alone = await generate(model.runner, { ...base, prompts: [prompt] });
      expect(alone.sequences[0]?.[0]?.tokens).toEqual(cached.sequences[i]?.[0]?.tokens);
    }
  });

  it('sampling with the cache equals sampling without it for the same seed', async () => {
    const request = { ...base, prompts: prompts3, numSamples: 4, temperature: 1, topP: 0.9, seed: 11 };
    const cached = await generate(model.runner, request);
    const full = await generate(model.runner, { ...request, useKvCache: false });
    expect(tokens(cached.sequences)).toEqual(tokens(full.sequences));
  });
});

describe('generate: seeds', () => {
  const request = { ...base, prompts: prompts3, numSamples: 4, temperature: 1.2, topP: 0.95, maxNewTokens: 8 };

  it('gives the same samples for the same seed and different ones for another', async () => {
    const a = tokens((await generate(model.runner, { ...request, seed: 5 })).sequences);
    const b = tokens((await generate(model.runner, { ...request, seed: 5 })).sequences);
    const c = tokens((await generate(model.runner, { ...request, seed: 6 })).sequences);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // The K samples of one prompt draw from different streams.
    for (const samples of a) expect(new Set(samples.map((s) => JSON.stringify(s))).size).toBe(4);
  });

  it("keeps a prompt's samples when other prompts join the batch (after it, or anywhere with an id)", async () => {
    const first = prompts3[0] as { inputIds: number[] };
    const alone = tokens((await generate(model.runner, { ...request, seed: 5, prompts: [first] })).sequences)[0];
    // The longer prompts added after it change its padding and the batch size.
    const joined = tokens((await generate(model.runner, { ...request, seed: 5, prompts: [first, { inputIds: textPrompt(14, 9) }] })).sequences)[0];
    expect(joined).toEqual(alone);
    const named = { ...first, id: 'q-17' };
    const namedAlone = tokens((await generate(model.runner, { ...request, seed: 5, prompts: [named] })).sequences)[0];
    const namedLast = tokens((await generate(model.runner, { ...request, seed: 5, prompts: [prompts3[1]!, prompts3[2]!, named] })).sequences)[2];
    expect(namedLast).toEqual(namedAlone);
    expect(namedAlone).not.toEqual(alone);
  });
});

describe('generate: stopping, streaming and batching', () => {
  const request = { ...base, prompts: prompts3, numSamples: 3, temperature: 1, maxNewTokens: 16, seed: 3 };

  it('stops a row at EOS, streams it before the batch ends, and drops it from the batch', async () => {
    const reference = await generate(model.runner, request);
    // The most frequent generated token as "EOS": several rows stop, at different steps.
    const counts = new Map<number, number>();
    for (const t of reference.sequences.flat().flatMap((q) => q.tokens)) counts.set(t, (counts.get(t) ?? 0) + 1);
    const stopId = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] as number;
    const runner = recordingRunner(model.runner);
    const streamed: { sequence: GeneratedSequence; decoderRuns: number }[] = [];
    const result = await generate(runner, {
      ...request,
      eosId: stopId,
      compactAt: 0,
      onSequenceDone: (sequence) => streamed.push({ sequence, decoderRuns: runner.calls.filter((c) => c.graph === 'decoder').length }),
    });
    // Same streams, so each row is the reference cut at its first stopId, which is not returned.
    reference.sequences.forEach((samples, p) =>
      samples.forEach((ref, k) => {
        const cut = ref.tokens.indexOf(stopId);
        const got = result.sequences[p]?.[k];
        expect(got?.tokens).toEqual(cut < 0 ? ref.tokens : ref.tokens.slice(0, cut));
        expect(got?.finishReason).toBe(cut < 0 ? 'max_new_tokens' : 'eos');
      }),
    );
    const decoderRuns = runner.calls.filter((c) => c.graph === 'decoder');
    const early = streamed.filter((s) => s.sequence.finishReason === 'eos');
    expect(early.length).toBeGreaterThanOrEqual(3);
    expect(new Set(early.map((s) => s.decoderRuns)).size).toBeGreaterThan(1);
    for (const s of early) expect(s.decoderRuns).toBeLessThan(decoderRuns.length);
    expect(streamed).toHaveLength(9);
    // Compaction: decode batches never grow and end smaller than they started.
    const decodeRows = decoderRuns.slice(1).map((c) => c.dims[0] as number);
    expect(decodeRows.every((rows, i) => i === 0 || rows <= (decodeRows[i - 1] as number))).toBe(true);
    expect(decodeRows.at(-1)).toBeLessThan(decodeRows[0] as number);
    // Without compaction the batch keeps its size and the tokens are the same.
    const kept = recordingRunner(model.runner);
    const uncompacted = await generate(kept, { ...request, eosId: stopId, compactAt: 1 });
    expect(tokens(uncompacted.sequences)).toEqual(tokens(result.sequences));
    // (Rows that end on their first token, sampled from the prefill, never enter the decode batch.)
    expect(new Set(kept.calls.filter((c) => c.graph === 'decoder').slice(1).map((c) => c.dims[0])).size).toBe(1);
    // compactAt 0.25: the batch only shrinks once at least a quarter of it has finished, so later than with 0.
    const quarter = recordingRunner(model.runner);
    const quarterResult = await generate(quarter, { ...request, eosId: stopId, compactAt: 0.25 });
    expect(tokens(quarterResult.sequences)).toEqual(tokens(result.sequences));
    const quarterRows = quarter.calls.filter((c) => c.graph === 'decoder').slice(1).map((c) => c.dims[0] as number);
    const shrinks = quarterRows.flatMap((rows, i) => (i > 0 && rows < (quarterRows[i - 1] as number) ? [{ before: quarterRows[i - 1] as number, after: rows }] : []));
    expect(shrinks.length).toBeGreaterThan(0);
    for (const { before, after } of shrinks) expect(before - after).toBeGreaterThanOrEqual(before * 0.25);
    const firstShrink = (rows: number[]): number => rows.findIndex((r, i) => i > 0 && r < (rows[i - 1] as number));
    expect(firstShrink(quarterRows)).toBeGreaterThan(firstShrink(decodeRows));
  });

  it('stops at maxNewTokens with one prefill and maxNewTokens - 1 decode steps', async () => {
    const runner = recordingRunner(model.runner);
    const result = await generate(runner, { ...request, maxNewTokens: 5 });
    expect(result.sequences.flat().map((s) => s.tokens.length)).toEqual(Array(9).fill(5));
    expect(result.stats.decoderRuns).toBe(5);
    expect(result.stats.generatedTokens).toBe(45);
  });

  it('stops at the context limit and refuses prompts that fill it', async () => {
    const result = await generate(model.runner, { ...request, maxContext: 13 });
    expect(result.sequences.map((s) => s.map((q) => [q.tokens.length, q.finishReason]))).toEqual([
      Array(3).fill([10, 'context_limit']),
      Array(3).fill([4, 'context_limit']),
      Array(3).fill([7, 'context_limit']),
    ]);
    await expect(generate(model.runner, { ...request, maxContext: 9 })).rejects.toThrow(InvalidArgumentError);
  });

  it('prefills each prompt once and tiles its cache over the K samples', async () => {
    const cached = recordingRunner(model.runner);
    const stats = (await generate(cached, { ...request, numSamples: 5, maxNewTokens: 4 })).stats;
    const decoder = cached.calls.filter((c) => c.graph === 'decoder');
    expect(decoder.map((c) => c.dims.slice(0, 2))).toEqual([[3, 9], [15, 1], [15, 1], [15, 1]]);
    expect(cached.calls.filter((c) => c.graph === 'embed')[0]?.dims).toEqual([3, 9]);
    expect(stats.decoderTokens).toBe(3 * 9 + 3 * 15);

    const full = recordingRunner(model.runner);
    await generate(full, { ...request, numSamples: 5, maxNewTokens: 4, useKvCache: false });
    expect(full.calls.filter((c) => c.graph === 'decoder').map((c) => c.dims.slice(0, 2))).toEqual([[15, 9], [15, 10], [15, 11], [15, 12]]);
  });
});

describe('generate: cancellation', () => {
  it('stops after the decoder run in flight when the signal fires', async () => {
    const controller = new AbortController();
    const runner = recordingRunner(model.runner, (call, calls) => {
      if (call.graph === 'decoder' && calls.filter((c) => c.graph === 'decoder').length === 3) controller.abort(new Error('client went away'));
    });
    const streamed: GeneratedSequence[] = [];
    const run = generate(runner, { ...base, prompts: prompts3, numSamples: 2, temperature: 1, maxNewTokens: 40, signal: controller.signal, onSequenceDone: (s) => streamed.push(s) });
    await expect(run).rejects.toThrow(GenerationCancelledError);
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED', cause: new Error('client went away') });
    expect(runner.calls.filter((c) => c.graph === 'decoder')).toHaveLength(3);
    expect(streamed).toEqual([]);
  });

  it('runs nothing when the signal has already fired', async () => {
    const runner = recordingRunner(model.runner);
    await expect(generate(runner, { ...base, prompts: prompts3, signal: AbortSignal.abort() })).rejects.toThrow(GenerationCancelledError);
    expect(runner.calls).toEqual([]);
  });
});

describe('generate: images', () => {
  it("replaces the one <image> token by the image's features, as @mstar/models' prefill recipe does", async () => {
    const ids = [[1, image, ...textPrompt(5, 4)], [1, ...textPrompt(3, 5), image, 7]];
    const runner = recordingRunner(model.runner);
    const request = { ...base, maxNewTokens: 6, imageTokenId: image };
    const viaIds = await generate(runner, { ...request, prompts: ids.map((inputIds, i) => ({ inputIds, pixelValues: pixels(i) })) });
    expect(runner.calls.filter((c) => c.graph === 'vision').map((c) => c.dims)).toEqual([[2, 3, 32, 32]]);
    expect(runner.calls.find((c) => c.graph === 'decoder')?.dims).toEqual([2, 22, HIDDEN]);

    // The models package's own recipe builds the same prefix embeddings.
    const b = buildPrefix(ids, TINY_CONFIG);
    const embeds = await model.sessions.embed.run({ input_ids: { type: 'int64', dims: [b.batch, b.seq], data: b.inputIds } });
    const imagePixels = new Float32Array(2 * 3 * 32 * 32);
    imagePixels.set(pixels(0).data as Float32Array, 0);
    imagePixels.set(pixels(1).data as Float32Array, 3 * 32 * 32);
    const features = await model.sessions.vision.run({ pixel_values: { type: 'float32', dims: [2, 3, 32, 32], data: imagePixels } });
    const merged = mergeImageFeatures(TINY_CONFIG, b, embeds['inputs_embeds']?.data as Float32Array, features['image_features']?.data as Float32Array);
    const prefixes = ids.map((row, r): GenerationPrompt => {
      const length = row.length + 15;
      const start = (r * b.seq + b.seq - length) * HIDDEN;
      return { prefixEmbeds: { type: 'float32' as const, dims: [1, length, HIDDEN], data: merged.slice(start, start + length * HIDDEN) } };
    });
    const viaEmbeds = await generate(model.runner, { ...request, prompts: prefixes });
    expect(tokens(viaEmbeds.sequences)).toEqual(tokens(viaIds.sequences));
    // Without the image the continuation differs: the features reach the decoder.
    const otherImage = await generate(model.runner, { ...request, prompts: ids.map((inputIds, i) => ({ inputIds, pixelValues: pixels(i + 5) })) });
    expect(tokens(otherImage.sequences)).not.toEqual(tokens(viaIds.sequences));
  });

  it('refuses images without a matching <image> token', async () => {
    const request = { ...base, imageTokenId: image };
    await expect(generate(model.runner, { ...request, prompts: [{ inputIds: [1, 7, 8], pixelValues: pixels(0) }] })).rejects.toThrow(/0 image tokens/);
    await expect(generate(model.runner, { ...request, prompts: [{ inputIds: [1, image, 8] }] })).rejects.toThrow(InvalidArgumentError);
    await expect(generate(model.runner, { ...base, prompts: [{ inputIds: [1, image, 8], pixelValues: pixels(0) }] })).rejects.toThrow(/imageTokenId/);
  });
});

describe('generate: request checks', () => {
  it.each([
    [{ prompts: [] }, 'prompts'],
    [{ numSamples: 0 }, 'numSamples'],
    [{ maxNewTokens: 0 }, 'maxNewTokens'],
    [{ temperature: -0.5 }, 'temperature'],
    [{ topP: 0 }, 'topP'],
    [{ compactAt: 1.5 }, 'compactAt'],
    [{ padId: -1 }, 'padId'],
    [{ prompts: [{ inputIds: [] }] }, 'prompts[0].inputIds'],
    [{ prompts: [{ prefixEmbeds: { type: 'float32', dims: [1, 2, 5], data: new Float32Array(10) } }] }, 'prompts[0].prefixEmbeds'],
  ].map(([change, field]) => [field, change]) as [string, Partial<GenerateRequest>][])('rejects a bad %s', async (field, change) => {
    const runner = recordingRunner(model.runner);
    await expect(generate(runner, { ...base, prompts: prompts3, ...change })).rejects.toMatchObject({ name: 'InvalidArgumentError', field });
    expect(runner.calls.filter((c) => c.graph === 'decoder')).toEqual([]);
  });
});

describe('poolRunner', () => {
  it('generates the same tokens on the worker pool as in-thread', async () => {
    const files = tinyModelFiles();
    const pool = createSessionPool({ workers: 1, device: 'cpu', intraOpThreads: 1 });
    try {
      const runner = poolRunner(pool, {
        decoder: await pool.load('decoder', files.get(ONNX_FILES.decoder) as Uint8Array),
        embed: await pool.load('embed', files.get(ONNX_FILES.embedTokens) as Uint8Array),
        vision: await pool.load('vision', files.get(ONNX_FILES.visionEncoder) as Uint8Array),
      });
      const request = { ...base, prompts: [...prompts3, { inputIds: [1, image, 9], pixelValues: pixels(2) }], numSamples: 2, temperature: 0.8, seed: 1, imageTokenId: image, eosId: eos };
      const inThread = await generate(model.runner, request);
      // One image may also come as [c, h, w]; the pool detaches feeds, and generate never feeds the caller's arrays.
      const chw = { ...pixels(2), dims: [3, 32, 32] };
      const inPool = await generate(runner, { ...request, prompts: [...prompts3, { inputIds: [1, image, 9], pixelValues: chw }] });
      expect(tokens(inPool.sequences)).toEqual(tokens(inThread.sequences));
      expect(chw.data.length).toBe(3 * 32 * 32);
    } finally {
      await pool.close();
    }
  });
});
