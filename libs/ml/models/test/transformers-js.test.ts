import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { buildWorldTokenizer, createWorldTokenizer } from '@mstar/world';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILES, GRAPH_IO, ONNX_FILES, TINY_CONFIG, fsCheckpointIO, saveCheckpoint, textHeadDim, type ModelConfig } from '../src/index.js';
import { f32, i64, randomWeights } from './helpers.js';

const config: ModelConfig = TINY_CONFIG;
const maxNewTokens = 10;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mstar-models-tjs-'));
  await saveCheckpoint(fsCheckpointIO(dir), { kind: 'policy', config, weights: randomWeights(config, 'policy', 23, 0.3), tokenizer: buildWorldTokenizer() });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Greedy decoding with our own loop over model.onnx and its KV cache (one prompt, batch 1). */
async function ourGreedy(prompt: number[]): Promise<number[]> {
  const session = await ort.InferenceSession.create(join(dir, CHECKPOINT_FILES.languageModelDir, 'onnx', ONNX_FILES.causalLm));
  const { layers, kvHeads, vocabSize } = config.text;
  const headDim = textHeadDim(config);
  const past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < layers; l++) {
    past[GRAPH_IO.pastKey(l)] = f32(new Float32Array(0), [1, kvHeads, 0, headDim]);
    past[GRAPH_IO.pastValue(l)] = f32(new Float32Array(0), [1, kvHeads, 0, headDim]);
  }
  const out: number[] = [];
  let chunk = prompt;
  let position = 0;
  for (let step = 0; step < maxNewTokens; step++) {
    const total = position + chunk.length;
    const result = await session.run({
      input_ids: i64(BigInt64Array.from(chunk, BigInt), [1, chunk.length]),
      attention_mask: i64(new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: i64(BigInt64Array.from(chunk, (_, i) => BigInt(position + i)), [1, chunk.length]),
      ...past,
    });
    const logits = (result.logits!.data as Float32Array).subarray((chunk.length - 1) * vocabSize);
    let best = 0;
    for (let v = 1; v < vocabSize; v++) if (logits[v]! > logits[best]!) best = v;
    out.push(best);
    if (best === config.tokens.eos) break;
    for (let l = 0; l < layers; l++) {
      past[GRAPH_IO.pastKey(l)] = result[GRAPH_IO.presentKey(l)]!;
      past[GRAPH_IO.pastValue(l)] = result[GRAPH_IO.presentValue(l)]!;
    }
    position = total;
    chunk = [best];
  }
  await session.release();
  return out;
}

describe('@huggingface/transformers loads the exported language model', () => {
  beforeAll(() => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = dir;
  });

  it('reads the tokenizer files the checkpoint holds', async () => {
    const tokenizer = await AutoTokenizer.from_pretrained(CHECKPOINT_FILES.languageModelDir);
    const text = 'the number of red triangles is 3.\n\n3 + 4 = 7.';
    expect(tokenizer.encode(text, { add_special_tokens: false })).toEqual(createWorldTokenizer().encode(text));
  });

  it('generates greedily the same tokens as our decoder loop', async () => {
    const model = await AutoModelForCausalLM.from_pretrained(CHECKPOINT_FILES.languageModelDir, { dtype: 'fp32', device: 'cpu' });
    try {
      for (const prompt of [[1, 10, 11, 12], [1, 200, 5, 300, 301, 6]]) {
        const output = (await model.generate({
          input_ids: new Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]),
          attention_mask: new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]),
          max_new_tokens: maxNewTokens,
          do_sample: false,
        })) as Tensor;
        const theirs = Array.from(output.data as BigInt64Array, Number).slice(prompt.length);
        const ours = await ourGreedy(prompt);
        expect(theirs).toEqual(ours);
        // Not a degenerate repeat of one token.
        expect(new Set(ours).size).toBeGreaterThan(1);
      }
    } finally {
      await model.dispose();
    }
  });
});
