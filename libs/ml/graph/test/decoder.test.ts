import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  buildDecoderTrainingGraph,
  decodeModel,
  decoderLogits,
  decoderParamCount,
  GraphBuilder,
  initParams,
  toModel,
  type DecoderConfig,
} from '../src/index.js';
import { checkTrainingGraph, randn, rng } from './helpers.js';

const batch = 2;
const seq = 5;
// Second sequence is right-padded by two tokens: masked as keys and ignored by the loss.
const attentionMask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
const lossWeights = [1, 0.5, 2, 1, 0, 1, 1, 0.25, 0, 0];
const inputIds = [1, 4, 2, 7, 3, 9, 0, 5, 0, 0];
const targets = [4, 2, 7, 3, 8, 0, 5, 6, 0, 0];

function feeds(dtype: 'float32' | 'float64'): Record<string, ort.Tensor> {
  const float = (xs: number[]): ort.Tensor =>
    new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(xs) : Float32Array.from(xs), [batch, seq]);
  return {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds, BigInt), [batch, seq]),
    targets: new ort.Tensor('int64', BigInt64Array.from(targets, BigInt), [batch, seq]),
    attention_mask: float(attentionMask),
    loss_weights: float(lossWeights),
  };
}

describe('decoder block gradient check (float64)', () => {
  const config: DecoderConfig = { vocab: 11, dModel: 8, layers: 1, heads: 2, kvHeads: 1, ffn: 12, seq, batch, dtype: 'float64' };
  const { graph, training } = buildDecoderTrainingGraph(config);
  // A point far from initialization, so every nonlinearity is exercised.
  const rand = rng(3);
  const point = new Map(
    [...graph.params.values()].map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const noise = randn(rand, n);
      return [p.value.name, Float64Array.from(noise, (z) => (p.init.kind === 'ones' ? 1 + 0.2 * z : 0.4 * z))];
    }),
  );

  it('counts the parameters', () => {
    expect(decoderParamCount(config)).toBe([...graph.params.values()].reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0));
    expect(graph.params.size).toBe(9);
  });

  it.each([...graph.params.keys()])('grad.%s matches a central difference', async (name) => {
    const r = await checkTrainingGraph(graph, training.gradOutputs, point, feeds('float64'), { eps: 1e-5, seed: 11, perturb: [name] });
    if (process.env.GRADCHECK_LOG !== undefined) console.log(`${name}: rel error ${r.relError.toExponential(2)} (analytic ${r.analytic.toExponential(3)})`);
    expect(Math.abs(r.analytic)).toBeGreaterThan(1e-8);
    expect(r.relError, `analytic ${r.analytic} vs numeric ${r.numeric}`).toBeLessThan(1e-6);
  });

  it('all parameters at once', async () => {
    const r = await checkTrainingGraph(graph, training.gradOutputs, point, feeds('float64'), { eps: 1e-5, seed: 5 });
    if (process.env.GRADCHECK_LOG !== undefined) console.log(`all params: rel error ${r.relError.toExponential(2)}`);
    expect(r.relError, `analytic ${r.analytic} vs numeric ${r.numeric}`).toBeLessThan(1e-6);
  });

  it('ignores padded positions: changing their ids and targets leaves loss and grads unchanged', async () => {
    const session = await ort.InferenceSession.create(toModel(graph, { params: 'inputs' }));
    const params = Object.fromEntries([...point].map(([n, x]) => [n, new ort.Tensor(x, [...(graph.params.get(n)?.shape ?? [])])]));
    const base = await session.run({ ...feeds('float64'), ...params });
    const f = feeds('float64');
    const ids = BigInt64Array.from(inputIds, BigInt);
    ids[8] = 6n;
    ids[9] = 10n;
    const tg = BigInt64Array.from(targets, BigInt);
    tg[9] = 3n;
    const moved = await session.run({ ...f, input_ids: new ort.Tensor('int64', ids, [batch, seq]), targets: new ort.Tensor('int64', tg, [batch, seq]), ...params });
    expect(Number(moved.loss?.data[0])).toBeCloseTo(Number(base.loss?.data[0]), 12);
    const gradBase = base['grad.layers.0.wqkv']?.data as Float64Array;
    const gradMoved = moved['grad.layers.0.wqkv']?.data as Float64Array;
    gradBase.forEach((v, i) => expect(gradMoved[i]).toBeCloseTo(v, 12));
    await session.release();
  });
});

describe('decoder with tied embeddings (float64)', () => {
  it('embed gets the sum of its lookup and LM-head gradients', async () => {
    const config: DecoderConfig = { vocab: 11, dModel: 8, layers: 1, heads: 2, kvHeads: 2, ffn: 8, seq, dtype: 'float64', tieEmbeddings: true };
    const { graph, training } = buildDecoderTrainingGraph(config);
    expect(graph.params.has('lm_head')).toBe(false);
    expect(decoderParamCount(config)).toBe([...graph.params.values()].reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0));
    const rand = rng(8);
    const point = new Map([...graph.params.values()].map((p) => [p.value.name, Float64Array.from(randn(rand, p.shape.reduce((a, b) => a * b, 1)), (z) => 0.4 * z)]));
    const r = await checkTrainingGraph(graph, training.gradOutputs, point, feeds('float64'), { eps: 1e-5, seed: 2, perturb: ['embed'] });
    expect(r.relError, `analytic ${r.analytic} vs numeric ${r.numeric}`).toBeLessThan(1e-6);
  });
});

describe('decoder inference graph', () => {
  it('embeds the weights, takes any batch, and ORT fuses its RMSNorms', async () => {
    const config: DecoderConfig = { vocab: 12, dModel: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24, seq: 6 };
    const g = new GraphBuilder('decoder_infer');
    const inputIds = g.input('input_ids', 'int64', ['batch', 6]);
    const attentionMask = g.input('attention_mask', 'int64', ['batch', 6]);
    const logits = decoderLogits(g, config, { inputIds, attentionMask });
    g.output(logits, 'logits');
    g.output(g.argMax(logits, -1), 'next');
    const dir = await mkdtemp(join(tmpdir(), 'mstar-graph-'));
    try {
      const optimized = join(dir, 'optimized.onnx');
      const session = await ort.InferenceSession.create(toModel(g, { weights: initParams(g.params.values(), 6) }), {
        optimizedModelFilePath: optimized,
        logSeverityLevel: 3,
      });
      const ops = decodeModel(await readFile(optimized)).graph.node.map((n) => n.opType);
      expect(ops.filter((op) => op === 'SimplifiedLayerNormalization')).toHaveLength(2 * config.layers + 1);
      const out = await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: 18 }, (_, i) => BigInt(i % 12)), [3, 6]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(18).fill(1n), [3, 6]),
      });
      expect(out.logits?.dims).toEqual([3, 6, 12]);
      expect(out.next?.dims).toEqual([3, 6]);
      // Causality: changing the token at position 4 leaves the logits at positions 0..3 untouched.
      const ids = BigInt64Array.from({ length: 6 }, (_, i) => BigInt(i + 1));
      const run = async (tokens: BigInt64Array): Promise<Float32Array> =>
        (await session.run({ input_ids: new ort.Tensor('int64', tokens, [1, 6]), attention_mask: new ort.Tensor('int64', new BigInt64Array(6).fill(1n), [1, 6]) }))
          .logits?.data as Float32Array;
      const base = await run(ids);
      const changed = ids.slice();
      changed[4] = 11n;
      const moved = await run(changed);
      expect(Array.from(moved.slice(0, 4 * 12))).toEqual(Array.from(base.slice(0, 4 * 12)));
      expect(Array.from(moved.slice(4 * 12))).not.toEqual(Array.from(base.slice(4 * 12)));
      await session.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('tiny decoder overfits a batch', () => {
  it('Adam drives the loss below 1% of its start', async () => {
    const config: DecoderConfig = { vocab: 16, dModel: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, seq, batch, dtype: 'float32' };
    const { graph, training } = buildDecoderTrainingGraph(config);
    const session = await ort.InferenceSession.create(toModel(graph, { params: 'inputs' }));
    const weights = initParams(graph.params.values(), 1) as Map<string, Float32Array>;
    const m = new Map([...weights].map(([n, w]) => [n, new Float32Array(w.length)]));
    const v = new Map([...weights].map(([n, w]) => [n, new Float32Array(w.length)]));
    const [lr, b1, b2, epsAdam] = [1e-2, 0.9, 0.999, 1e-8];
    const losses: number[] = [];
    for (let step = 1; step <= 300; step++) {
      const paramFeeds = Object.fromEntries([...weights].map(([n, w]) => [n, new ort.Tensor(w, [...(graph.params.get(n)?.shape ?? [])])]));
      const out = await session.run({ ...feeds('float32'), ...paramFeeds });
      losses.push(Number(out.loss?.data[0]));
      if (losses[losses.length - 1]! < 0.005 * losses[0]!) break;
      for (const [n, w] of weights) {
        const grad = out[training.gradOutputs.get(n) as string]?.data as Float32Array;
        const mn = m.get(n) as Float32Array;
        const vn = v.get(n) as Float32Array;
        const c1 = 1 - b1 ** step;
        const c2 = 1 - b2 ** step;
        for (let i = 0; i < w.length; i++) {
          const gi = grad[i] as number;
          mn[i] = b1 * (mn[i] as number) + (1 - b1) * gi;
          vn[i] = b2 * (vn[i] as number) + (1 - b2) * gi * gi;
          w[i] = (w[i] as number) - (lr * ((mn[i] as number) / c1)) / (Math.sqrt((vn[i] as number) / c2) + epsAdam);
        }
      }
    }
    await session.release();
    const [start, end] = [losses[0] as number, losses[losses.length - 1] as number];
    if (process.env.GRADCHECK_LOG !== undefined) console.log(`overfit: ${start.toFixed(4)} -> ${end.toFixed(6)} in ${losses.length} steps`);
    expect(start).toBeGreaterThan(2);
    expect(end).toBeLessThan(0.01 * start);
  });
});
