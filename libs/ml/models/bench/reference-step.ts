/**
 * Times the REFERENCE model on this machine (ORT CPU EP): one SFT forward+backward step and the
 * PRM scoring pass over a batch of full sequences, and KV-cache decoding (prefill + one-token steps).
 * Run: npm run bench:step [-- --batch 8 --seq 80]
 */
import { parseArgs } from 'node:util';
import { toModel } from '@mstar/graph';
import * as ort from 'onnxruntime-node';
import {
  GRAPH_IO,
  REFERENCE_CONFIG,
  buildDecoderGraph,
  buildPolicyTrainingGraph,
  buildPrmScoringGraph,
  initWeights,
  padBatch,
  paramCount,
  paramSpecs,
  prmWeightsFromPolicy,
  textHeadDim,
} from '../src/index.js';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '8' }, seq: { type: 'string', default: '80' }, steps: { type: 'string', default: '5' } } });
const batch = Number(values.batch);
const seq = Number(values.seq);
const steps = Number(values.steps);
const config = REFERENCE_CONFIG;
const weights = initWeights(config, 'policy', 1);
const f32 = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
const i64 = (data: BigInt64Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', data, dims);

async function time(label: string, fn: () => Promise<unknown>, n: number): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  const ms = (performance.now() - t0) / n;
  console.log(`${label}: ${ms.toFixed(1)} ms`);
  return ms;
}

const ids = Array.from({ length: batch }, (_, b) => [1, ...Array<number>(16).fill(4), ...Array.from({ length: seq - 17 - (b % 4) }, (_, i) => 10 + ((b + i) % 300))]);
const tokens = padBatch(ids, 0, 'right');
const pixels = f32(Float32Array.from({ length: batch * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [batch, 3, 32, 32]);
const data = {
  pixel_values: pixels,
  input_ids: i64(tokens.inputIds, [batch, tokens.seq]),
  attention_mask: i64(tokens.attentionMask, [batch, tokens.seq]),
};
console.log(`REFERENCE: ${paramCount(config, 'policy')} params; batch ${batch} x seq ${tokens.seq}`);

const train = buildPolicyTrainingGraph(config);
const trainSession = await ort.InferenceSession.create(toModel(train.graph, { params: 'inputs' }), { graphOptimizationLevel: 'all' });
const paramFeeds: Record<string, ort.Tensor> = {};
for (const s of paramSpecs(config, 'policy')) paramFeeds[s.name] = f32(weights.get(s.name)!, [...s.shape]);
const targets = i64(tokens.inputIds, [batch, tokens.seq]);
const lossWeights = f32(Float32Array.from(tokens.attentionMask, Number), [batch, tokens.seq]);
const trainMs = await time('SFT forward+backward step', () => trainSession.run({ ...data, targets, loss_weights: lossWeights, ...paramFeeds }), steps);
console.log(`  ${((batch * tokens.seq) / (trainMs / 1000)).toFixed(0)} tokens/s`);

const prm = await ort.InferenceSession.create(toModel(buildPrmScoringGraph(config), { weights: prmWeightsFromPolicy(config, weights, 2) }), { graphOptimizationLevel: 'all' });
await time('PRM scoring pass', () => prm.run(data), steps);

const decoder = await ort.InferenceSession.create(toModel(buildDecoderGraph(config), { weights }), { graphOptimizationLevel: 'all' });
const hd = textHeadDim(config);
const hidden = config.text.hiddenSize;
const prefill = 32;
const decodeSteps = 32;
let prefillMs = 0;
let decodeMs = 0;
for (let rep = 0; rep < 3; rep++) {
  let past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < config.text.layers; l++) {
    past[GRAPH_IO.pastKey(l)] = f32(new Float32Array(0), [batch, config.text.kvHeads, 0, hd]);
    past[GRAPH_IO.pastValue(l)] = f32(new Float32Array(0), [batch, config.text.kvHeads, 0, hd]);
  }
  let length = 0;
  for (let step = 0; step <= decodeSteps; step++) {
    const n = step === 0 ? prefill : 1;
    const t0 = performance.now();
    const out = await decoder.run({
      inputs_embeds: f32(new Float32Array(batch * n * hidden).fill(0.01), [batch, n, hidden]),
      attention_mask: i64(new BigInt64Array(batch * (length + n)).fill(1n), [batch, length + n]),
      position_ids: i64(BigInt64Array.from({ length: batch * n }, (_, i) => BigInt(length + (i % n))), [batch, n]),
      ...past,
    });
    // The first repetition warms up.
    if (rep > 0) {
      if (step === 0) prefillMs += performance.now() - t0;
      else decodeMs += performance.now() - t0;
    }
    length += n;
    past = {};
    for (let l = 0; l < config.text.layers; l++) {
      past[GRAPH_IO.pastKey(l)] = out[GRAPH_IO.presentKey(l)]!;
      past[GRAPH_IO.pastValue(l)] = out[GRAPH_IO.presentValue(l)]!;
    }
  }
}
console.log(`prefill ${prefill} tokens x ${batch}: ${(prefillMs / 2).toFixed(1)} ms; decode step (batch ${batch}): ${(decodeMs / 2 / decodeSteps).toFixed(1)} ms`);
