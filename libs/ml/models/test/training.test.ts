import { seededRandom, toModel } from '@mstar/graph';
import type * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  TINY_CONFIG,
  buildPolicyTrainingGraph,
  buildPrmBatch,
  buildSftBatch,
  buildPrmScoringGraph,
  buildPrmTrainingGraph,
  expandImageTokens,
  initWeights,
  padBatch,
  paramSpecs,
  type ModelKind,
  type ModelWeights,
  type TokenBatch,
} from '../src/index.js';
import { f32, i64, randomPixels, randomWeights, session } from './helpers.js';

const config = TINY_CONFIG;
const STEP = 5; // the world tokenizer's "\n\n"
// Image prompts + responses of steps; right padding (training batches may pad either side).
const examples = [
  { prompt: [1, 4, 6, 10, 11], response: [40, 41, STEP, 42, 43, STEP, 44, 2], labels: [0.9, 0.25, 0.6] },
  { prompt: [1, 4, 6, 20], response: [50, STEP, 51, 2], labels: [1, 0], weights: [2, 1] },
];
const sft = buildSftBatch(examples, config);
const prmBatch = buildPrmBatch(examples, config, STEP);
const batch: TokenBatch = sft;
const sequences = examples.map((e) => [...expandImageTokens(e.prompt, config), ...e.response]);
const pixels = randomPixels(2, config, 3);

function dataFeeds(targets: ort.Tensor, weights: Float32Array): Record<string, ort.Tensor> {
  return {
    pixel_values: f32(pixels, [2, 3, 32, 32]),
    input_ids: i64(batch.inputIds, [batch.batch, batch.seq]),
    attention_mask: i64(batch.attentionMask, [batch.batch, batch.seq]),
    targets,
    loss_weights: f32(weights, [batch.batch, batch.seq]),
  };
}

function paramFeeds(kind: ModelKind, weights: ModelWeights, names: readonly string[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const s of paramSpecs(config, kind)) if (names.includes(s.name)) feeds[s.name] = f32(weights.get(s.name)!, [...s.shape]);
  return feeds;
}

/**
 * Central-difference check of the gradient along a random direction over `names`.
 */
async function directionalCheck(s: ort.InferenceSession, kind: ModelKind, weights: ModelWeights, data: Record<string, ort.Tensor>, names: readonly string[]): Promise<number> {
  const rand = seededRandom(99);
  const direction = new Map(names.map((n) => [n, Float32Array.from(weights.get(n)!, () => 2 * rand() - 1)]));
  const shifted = (eps: number): ModelWeights =>
    new Map([...weights].map(([n, w]) => [n, direction.has(n) ? Float32Array.from(w, (x, i) => x + eps * direction.get(n)![i]!) : w]));
  const all = paramSpecs(config, kind).map((p) => p.name);
  const loss = async (w: ModelWeights): Promise<number> => (await s.run({ ...data, ...paramFeeds(kind, w, all) })).loss!.data[0] as number;
  const out = await s.run({ ...data, ...paramFeeds(kind, weights, all) });
  let analytic = 0;
  for (const n of names) {
    const g = out[`grad.${n}`]!.data as Float32Array;
    direction.get(n)!.forEach((d, i) => (analytic += d * g[i]!));
  }
  // The error shrinks quadratically with eps (measured 6e-2, 6e-3, 6e-4 at 1e-2, 3e-3, 1e-3) down to
  // float32 noise, so at 1e-3 a correct gradient is within 5e-3.
  const eps = 1e-3;
  const numeric = ((await loss(shifted(eps))) - (await loss(shifted(-eps)))) / (2 * eps);
  expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
  return Math.abs(analytic - numeric) / Math.abs(numeric);
}

describe('training graphs', () => {
  let policyTrain: ort.InferenceSession;
  let prmTrain: ort.InferenceSession;
  let prmScore: ort.InferenceSession;
  const policy = randomWeights(config, 'policy', 4, 0.1);
  const prm = randomWeights(config, 'prm', 5, 0.1);

  beforeAll(async () => {
    policyTrain = await session(toModel(buildPolicyTrainingGraph(config).graph, { params: 'inputs' }));
    prmTrain = await session(toModel(buildPrmTrainingGraph(config).graph, { params: 'inputs' }));
    prmScore = await session(toModel(buildPrmScoringGraph(config), { weights: prm }));
  });

  const sftData = (): Record<string, ort.Tensor> => dataFeeds(i64(sft.targets, [batch.batch, batch.seq]), sft.lossWeights);

  it('policy SFT gradients match a central difference (all params, and the vision tower alone)', async () => {
    const all = paramSpecs(config, 'policy').map((p) => p.name);
    const vision = all.filter((n) => n.startsWith('vision_tower.') || n.startsWith('multi_modal_projector.'));
    const errAll = await directionalCheck(policyTrain, 'policy', policy, sftData(), all);
    const errVision = await directionalCheck(policyTrain, 'policy', policy, sftData(), vision);
    console.log('policy directional-derivative relative error', { all: errAll, vision: errVision });
    expect(errAll).toBeLessThan(5e-3);
    expect(errVision).toBeLessThan(5e-3);
  });

  it('PRM BCE loss is the weighted BCE of the scoring graph scores, and its gradients check out', async () => {
    const { targets, lossWeights: weights } = prmBatch;
    // Expanded prompts are 4 + 16 and 3 + 16 tokens long.
    expect(prmBatch.boundaries).toEqual([[20 + 2, 20 + 5, 20 + 7], [19 + 1, 19 + 3]]);
    const data = dataFeeds(f32(targets, [batch.batch, batch.seq]), weights);
    const out = await prmTrain.run({ ...data, ...paramFeeds('prm', prm, paramSpecs(config, 'prm').map((p) => p.name)) });
    const scored = await prmScore.run({ pixel_values: data.pixel_values!, input_ids: data.input_ids!, attention_mask: data.attention_mask! });
    expect(scored.scores!.dims).toEqual([batch.batch, batch.seq]);
    const scores = scored.scores!.data as Float32Array;
    let sum = 0;
    let total = 0;
    weights.forEach((w, i) => {
      if (w === 0) return;
      const p = scores[i]!;
      sum += -w * (targets[i]! * Math.log(p) + (1 - targets[i]!) * Math.log(1 - p));
      total += w;
    });
    expect(Math.abs((out.loss!.data[0] as number) - sum / total)).toBeLessThan(1e-4);
    // Scores vary with the position (the head reads each position's hidden state).
    expect(Math.max(...scores) - Math.min(...scores)).toBeGreaterThan(0.05);
    const names = paramSpecs(config, 'prm').map((p) => p.name);
    const err = await directionalCheck(prmTrain, 'prm', prm, data, names);
    console.log('PRM directional-derivative relative error', err);
    expect(err).toBeLessThan(5e-3);
    expect(out['grad.score.weight']!.dims).toEqual([1, config.text.hiddenSize]);
  });

  it('PRM scores do not depend on the padding side', async () => {
    const left = padBatch(sequences, config.tokens.pad, 'left');
    const feeds = (b: TokenBatch): Record<string, ort.Tensor> => ({
      pixel_values: f32(pixels, [2, 3, 32, 32]),
      input_ids: i64(b.inputIds, [b.batch, b.seq]),
      attention_mask: i64(b.attentionMask, [b.batch, b.seq]),
    });
    const right = (await prmScore.run(feeds(batch))).scores!.data as Float32Array;
    const leftScores = (await prmScore.run(feeds(left))).scores!.data as Float32Array;
    sequences.forEach((seq, r) => {
      const offset = left.seq - seq.length;
      for (let s = 0; s < seq.length; s++) expect(Math.abs(leftScores[r * left.seq + offset + s]! - right[r * batch.seq + s]!)).toBeLessThan(1e-5);
    });
  });

  it('SFT overfits one batch with a plain Adam loop from the seeded init', async () => {
    const names = paramSpecs(config, 'policy').map((p) => p.name);
    const w = initWeights(config, 'policy', 1);
    const m = new Map(names.map((n) => [n, new Float32Array(w.get(n)!.length)]));
    const v = new Map(names.map((n) => [n, new Float32Array(w.get(n)!.length)]));
    const losses: number[] = [];
    const [lr, b1, b2] = [1e-2, 0.9, 0.999];
    for (let step = 1; step <= 60; step++) {
      const out = await policyTrain.run({ ...sftData(), ...paramFeeds('policy', w, names) });
      losses.push(out.loss!.data[0] as number);
      for (const n of names) {
        const g = out[`grad.${n}`]!.data as Float32Array;
        const [p, mn, vn] = [w.get(n)!, m.get(n)!, v.get(n)!];
        for (let i = 0; i < p.length; i++) {
          mn[i] = b1 * mn[i]! + (1 - b1) * g[i]!;
          vn[i] = b2 * vn[i]! + (1 - b2) * g[i]! * g[i]!;
          p[i] = p[i]! - (lr * (mn[i]! / (1 - b1 ** step))) / (Math.sqrt(vn[i]! / (1 - b2 ** step)) + 1e-8);
        }
      }
    }
    console.log('SFT overfit loss', losses[0], '->', losses[losses.length - 1]);
    // ln(380) = 5.94 at initialisation.
    expect(losses[0]).toBeGreaterThan(5.5);
    expect(losses[losses.length - 1]).toBeLessThan(0.1);
  });
});
