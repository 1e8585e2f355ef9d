import { toModel } from '@mstar/graph';
import type * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GRAPH_IO,
  TINY_CONFIG,
  buildDecoderGraph,
  buildEmbedTokensGraph,
  buildPolicyForwardGraph,
  buildPolicyTrainingGraph,
  buildPrefix,
  expandImageTokens,
  buildVisionEncoderGraph,
  mergeImageFeatures,
  numImageTokens,
  padBatch,
  positionIdsFromMask,
  textHeadDim,
  type ModelConfig,
  type TokenBatch,
} from '../src/index.js';
import { f32, i64, maxDiff, randomPixels, randomWeights, session } from './helpers.js';

const config: ModelConfig = TINY_CONFIG;
const { vocabSize: vocab, hiddenSize: hidden, layers, kvHeads } = config.text;
const headDim = textHeadDim(config);
// Three image prompts of different lengths plus their responses: one left-padded batch.
const prompts = [
  [1, 4, 6, 10, 11, 12],
  [1, 4, 6, 20],
  [1, 4, 6, 30, 31, 32, 33, 34],
];
const responses = [
  [40, 41, 5, 42],
  [50, 51, 52, 5, 53, 54],
  [60, 5],
];
const batchSize = prompts.length;

let forward: ort.InferenceSession;
let vision: ort.InferenceSession;
let embed: ort.InferenceSession;
let decoder: ort.InferenceSession;
let training: ort.InferenceSession;
let weights: Map<string, Float32Array>;
const pixels = randomPixels(batchSize, config, 5);
const pixelDims = [batchSize, 3, 32, 32];

beforeAll(async () => {
  weights = randomWeights(config, 'policy', 11);
  forward = await session(toModel(buildPolicyForwardGraph(config), { weights }));
  vision = await session(toModel(buildVisionEncoderGraph(config), { weights }));
  embed = await session(toModel(buildEmbedTokensGraph(config), { weights }));
  decoder = await session(toModel(buildDecoderGraph(config), { weights }));
  training = await session(toModel(buildPolicyTrainingGraph(config).graph, { params: 'inputs' }));
});

/** Full sequences (expanded prompt + response), left-padded. */
function fullBatch(): TokenBatch {
  return padBatch(
    prompts.map((p, i) => [...expandImageTokens(p, config), ...responses[i]!]),
    config.tokens.pad,
    'left',
  );
}

async function referenceLogits(b: TokenBatch): Promise<Float32Array> {
  const out = await forward.run({
    pixel_values: f32(pixels, pixelDims),
    input_ids: i64(b.inputIds, [b.batch, b.seq]),
    attention_mask: i64(b.attentionMask, [b.batch, b.seq]),
  });
  return out.logits!.data as Float32Array;
}

/** Embeddings of a batch through the inference graphs: embed_tokens + vision_encoder + merge. */
async function mergedEmbeds(b: TokenBatch): Promise<Float32Array> {
  const [e, v] = await Promise.all([
    embed.run({ input_ids: i64(b.inputIds, [b.batch, b.seq]) }),
    vision.run({ pixel_values: f32(pixels, pixelDims) }),
  ]);
  expect(v.image_features!.dims).toEqual([b.batch, numImageTokens(config), hidden]);
  return mergeImageFeatures(config, b, e.inputs_embeds!.data as Float32Array, v.image_features!.data as Float32Array);
}

function emptyPast(batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let l = 0; l < layers; l++) {
    feeds[GRAPH_IO.pastKey(l)] = f32(new Float32Array(0), [batch, kvHeads, 0, headDim]);
    feeds[GRAPH_IO.pastValue(l)] = f32(new Float32Array(0), [batch, kvHeads, 0, headDim]);
  }
  return feeds;
}

/** Columns [from, to) of a row-major [batch, seq, width] array. */
function columns(data: Float32Array | BigInt64Array, batch: number, seq: number, width: number, from: number, to: number): typeof data {
  const out = new (data.constructor as new (n: number) => typeof data)(batch * (to - from) * width);
  for (let r = 0; r < batch; r++) out.set(data.subarray((r * seq + from) * width, (r * seq + to) * width) as never, r * (to - from) * width);
  return out;
}

describe('inference graphs agree with the training forward', () => {
  it('prefill of the whole batch (empty past) gives the same logits at every real position', async () => {
    const b = fullBatch();
    const ref = await referenceLogits(b);
    const embeds = await mergedEmbeds(b);
    const out = await decoder.run({
      inputs_embeds: f32(embeds, [b.batch, b.seq, hidden]),
      attention_mask: i64(b.attentionMask, [b.batch, b.seq]),
      position_ids: i64(b.positionIds, [b.batch, b.seq]),
      ...emptyPast(b.batch),
    });
    expect(out.logits!.dims).toEqual([b.batch, b.seq, vocab]);
    expect(out[GRAPH_IO.presentKey(0)]!.dims).toEqual([b.batch, kvHeads, b.seq, headDim]);
    const real = (row: number): boolean => b.attentionMask[row] === 1n;
    const diff = maxDiff(ref, out.logits!.data as Float32Array, vocab, real);
    expect(diff).toBeLessThan(1e-4);
    // The logits are far from uniform, so the agreement is not trivial.
    const spread = Math.max(...ref.slice(-vocab)) - Math.min(...ref.slice(-vocab));
    expect(spread).toBeGreaterThan(1);
  });

  it('prefill of a part then one-token decode steps through the KV cache gives the same logits', async () => {
    const b = fullBatch();
    const ref = await referenceLogits(b);
    const embeds = await mergedEmbeds(b);
    const split = b.seq - 4;
    let past = emptyPast(b.batch);
    const got = new Float32Array(b.batch * b.seq * vocab);
    for (const [from, to] of [[0, split], [split, split + 1], [split + 1, split + 2], [split + 2, split + 3], [split + 3, b.seq]] as const) {
      const out = await decoder.run({
        inputs_embeds: f32(columns(embeds, b.batch, b.seq, hidden, from, to) as Float32Array, [b.batch, to - from, hidden]),
        attention_mask: i64(columns(b.attentionMask, b.batch, b.seq, 1, 0, to) as BigInt64Array, [b.batch, to]),
        position_ids: i64(columns(b.positionIds, b.batch, b.seq, 1, from, to) as BigInt64Array, [b.batch, to - from]),
        ...past,
      });
      const logits = out.logits!.data as Float32Array;
      for (let r = 0; r < b.batch; r++) got.set(logits.subarray(r * (to - from) * vocab, (r + 1) * (to - from) * vocab), (r * b.seq + from) * vocab);
      past = {};
      for (let l = 0; l < layers; l++) {
        expect(out[GRAPH_IO.presentKey(l)]!.dims).toEqual([b.batch, kvHeads, to, headDim]);
        past[GRAPH_IO.pastKey(l)] = out[GRAPH_IO.presentKey(l)]!;
        past[GRAPH_IO.pastValue(l)] = out[GRAPH_IO.presentValue(l)]!;
      }
    }
    const d = maxDiff(ref, got, vocab, (row) => b.attentionMask[row] === 1n);
    expect(d).toBeLessThan(1e-4);
  });

  it('padding does not change a row: each prompt alone gives the logits it gets in the batch', async () => {
    const b = fullBatch();
    const ref = await referenceLogits(b);
    for (let r = 0; r < batchSize; r++) {
      const row = Array.from(b.inputIds.subarray(r * b.seq, (r + 1) * b.seq), Number).filter((_, s) => b.attentionMask[r * b.seq + s] === 1n);
      const alone = padBatch([row], config.tokens.pad);
      const out = await forward.run({
        pixel_values: f32(pixels.slice(r * 3 * 32 * 32, (r + 1) * 3 * 32 * 32), [1, 3, 32, 32]),
        input_ids: i64(alone.inputIds, [1, alone.seq]),
        attention_mask: i64(alone.attentionMask, [1, alone.seq]),
      });
      const mine = ref.subarray(((r + 1) * b.seq - alone.seq) * vocab, (r + 1) * b.seq * vocab);
      expect(maxDiff(mine, out.logits!.data as Float32Array, vocab, () => true)).toBeLessThan(1e-4);
    }
  });

  it('the SFT training graph computes the response-only weighted cross-entropy of the same logits', async () => {
    const b = fullBatch();
    const ref = await referenceLogits(b);
    const targets = new BigInt64Array(b.batch * b.seq);
    const lossWeights = new Float32Array(b.batch * b.seq);
    let expected = 0;
    let total = 0;
    for (let r = 0; r < b.batch; r++) {
      // Position s predicts token s + 1; only response tokens are weighted.
      const responseStart = b.seq - responses[r]!.length;
      for (let s = 0; s < b.seq - 1; s++) {
        const i = r * b.seq + s;
        targets[i] = b.inputIds[i + 1]!;
        if (s + 1 < responseStart) continue;
        lossWeights[i] = 1;
        const row = ref.subarray(i * vocab, (i + 1) * vocab);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0));
        expected += lse - row[Number(targets[i])]!;
        total += 1;
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      pixel_values: f32(pixels, pixelDims),
      input_ids: i64(b.inputIds, [b.batch, b.seq]),
      attention_mask: i64(b.attentionMask, [b.batch, b.seq]),
      targets: i64(targets, [b.batch, b.seq]),
      loss_weights: f32(lossWeights, [b.batch, b.seq]),
    };
    for (const name of training.inputNames) if (weights.has(name)) feeds[name] = f32(weights.get(name)!, dimsOf(training, name));
    const out = await training.run(feeds);
    expect(Math.abs((out.loss!.data as Float32Array)[0]! - expected / total)).toBeLessThan(1e-4);
    expect(out['grad.lm_head.weight']!.dims).toEqual([vocab, hidden]);
  });

  it('buildPrefix expands the image token and left-pads', () => {
    const b = buildPrefix(prompts, config);
    expect([b.batch, b.seq]).toEqual([3, 8 + numImageTokens(config) - 1]);
    const row1 = Array.from(b.inputIds.subarray(b.seq, 2 * b.seq), Number);
    expect(row1).toEqual([0, 0, 0, 0, 1, ...Array<number>(16).fill(4), 6, 20]);
    expect(Array.from(b.positionIds.subarray(b.seq, 2 * b.seq), Number)).toEqual([1, 1, 1, 1, ...Array.from({ length: 19 }, (_, i) => i)]);
  });

  it('position ids follow the mask (left padding)', () => {
    expect(Array.from(positionIdsFromMask([0, 0, 1, 1, 1, 1, 1, 1], 2, 4), Number)).toEqual([1, 1, 0, 1, 0, 1, 2, 3]);
  });
});

function dimsOf(s: ort.InferenceSession, name: string): number[] {
  const meta = s.inputMetadata.find((m) => m.name === name);
  if (meta === undefined || !meta.isTensor) throw new Error(`no input ${name}`);
  return meta.shape.map(Number);
}
