import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttributeType,
  AutodiffError,
  buildDecoderTrainingGraph,
  buildTrainingGraph,
  decodeModel,
  encodeModel,
  GraphBuildError,
  GraphBuilder,
  initParams,
  OnnxCodecError,
  saveModel,
  SLICE_TO_END,
  TensorDataType,
  toModel,
  type TypedArray,
} from '../src/index.js';

function smallModel(): { g: GraphBuilder; weights: Map<string, TypedArray> } {
  const g = new GraphBuilder('small');
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.param('w', [4, 3]);
  const s = g.param('s', [3], { init: { kind: 'ones' } });
  const h = g.layerNorm(g.gelu(g.matmul(x, w)), s, undefined, 1e-3);
  const z = g.fillLike(h, 0.5);
  g.output(g.softmax(g.transpose(g.add(h, z), [1, 0]), 0), 'y');
  return { g, weights: initParams(g.params.values(), 4) };
}

describe('ONNX encode / decode', () => {
  it('round-trips and keeps attribute types explicit', () => {
    const { g, weights } = smallModel();
    const bytes = toModel(g, { weights, metadata: { purpose: 'test' } });
    const m = decodeModel(bytes);
    expect(m.irVersion).toBe(9);
    expect(m.opsetImport).toEqual([{ version: 20 }]);
    expect(m.metadataProps).toEqual([{ key: 'purpose', value: 'test' }]);
    expect(m.graph.node.map((n) => n.opType)).toEqual(['MatMul', 'Gelu', 'LayerNormalization', 'Shape', 'ConstantOfShape', 'Add', 'Transpose', 'Softmax', 'Identity']);
    const attr = (op: string, name: string) => m.graph.node.find((n) => n.opType === op)?.attribute?.find((a) => a.name === name);
    expect(attr('LayerNormalization', 'epsilon')).toMatchObject({ type: AttributeType.FLOAT });
    expect(attr('LayerNormalization', 'epsilon')?.f).toBeCloseTo(1e-3, 8);
    expect(attr('LayerNormalization', 'axis')).toMatchObject({ type: AttributeType.INT, i: -1 });
    expect(attr('Transpose', 'perm')).toMatchObject({ type: AttributeType.INTS, ints: [1, 0] });
    expect(new TextDecoder().decode(attr('Gelu', 'approximate')?.s)).toBe('none');
    const fill = attr('ConstantOfShape', 'value');
    expect(fill?.type).toBe(AttributeType.TENSOR);
    expect(new Float32Array(Uint8Array.from(fill?.t?.rawData ?? []).buffer)).toEqual(new Float32Array([0.5]));
    expect(m.graph.input[0]?.type?.tensorType?.shape?.dim).toEqual([{ dimParam: 'batch' }, { dimValue: 4 }]);
    const w = m.graph.initializer?.find((t) => t.name === 'w');
    expect(w).toMatchObject({ dims: [4, 3], dataType: TensorDataType.FLOAT });
    expect(new Float32Array(Uint8Array.from(w?.rawData ?? []).buffer)).toEqual(weights.get('w'));
    expect(encodeModel(m)).toEqual(bytes);
  });

  it('refuses bytes that are not a model', () => {
    expect(() => decodeModel(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(OnnxCodecError);
  });

  it('runs in ORT with a symbolic batch', async () => {
    const { g, weights } = smallModel();
    const session = await ort.InferenceSession.create(toModel(g, { weights }));
    for (const batch of [1, 3]) {
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from({ length: batch * 4 }, (_, i) => i / 7), [batch, 4]) });
      const y = out.y as ort.Tensor;
      expect(y.dims).toEqual([3, batch]);
      // softmax over axis 0 of the transposed result: each column sums to 1
      for (let b = 0; b < batch; b++) expect([0, 1, 2].reduce((a, r) => a + Number(y.data[r * batch + b]), 0)).toBeCloseTo(1, 5);
    }
    await session.release();
  });

  it('prunes what no output needs, except params', () => {
    const g = new GraphBuilder('prune');
    const x = g.input('x', 'float32', [2]);
    const labels = g.input('labels', 'int64', [1]);
    const w = g.param('w', [2]);
    g.param('spare', [3]);
    g.tokenCrossEntropy(g.unsqueeze(g.mul(x, w), [0]), labels);
    g.output(g.mul(x, w), 'y');
    const m = decodeModel(toModel(g, { params: 'inputs' }));
    expect(m.graph.input.map((i) => i.name)).toEqual(['x', 'w', 'spare']);
    expect(m.graph.node.map((n) => n.opType)).toEqual(['Mul', 'Identity']);
  });

  it('reports missing and mis-sized weights by name', () => {
    const { g } = smallModel();
    expect(() => toModel(g, { weights: { w: new Float32Array(5) } })).toThrow(
      /'w' needs 12 float32 values for shape \[4, 3\], got 5 in a Float32Array; 's' has no weights/,
    );
  });
});

describe('external data', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mstar-graph-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ORT loads a model whose weights live in a separate file', async () => {
    const g = new GraphBuilder('ext');
    const x = g.input('x', 'float32', ['batch', 128]);
    const w1 = g.param('w1', [128, 256]);
    const w2 = g.param('w2', [256, 8]);
    const b = g.param('b', [8], { init: { kind: 'uniform', limit: 1 } });
    g.output(g.add(g.matmul(g.relu(g.matmul(x, w1)), w2), b), 'y');
    const weights = initParams(g.params.values(), 9);
    const path = await saveModel(g, dir, 'model.onnx', { weights, externalData: { location: 'model.onnx.data' } });

    const m = decodeModel(toModel(g, { weights }));
    expect(m.graph.initializer?.every((t) => t.dataLocation === undefined)).toBe(true);
    const { readFile } = await import('node:fs/promises');
    const ext = decodeModel(await readFile(path));
    const entries = (name: string) => Object.fromEntries((ext.graph.initializer?.find((t) => t.name === name)?.externalData ?? []).map((e) => [e.key, e.value]));
    expect(entries('w1')).toEqual({ location: 'model.onnx.data', offset: '0', length: String(128 * 256 * 4) });
    expect(Number(entries('w2').offset) % 4096).toBe(0);
    // b is 32 bytes, under the 1 KiB threshold: stays inline
    expect(ext.graph.initializer?.find((t) => t.name === 'b')?.rawData?.length).toBe(32);
    expect((await stat(path)).size).toBeLessThan(4096);
    expect((await stat(join(dir, 'model.onnx.data'))).size).toBe(Number(entries('w2').offset) + 256 * 8 * 4);

    const input = new ort.Tensor('float32', Float32Array.from({ length: 2 * 128 }, (_, i) => Math.sin(i)), [2, 128]);
    const fromFile = await ort.InferenceSession.create(path);
    const embedded = await ort.InferenceSession.create(toModel(g, { weights }));
    const a = (await fromFile.run({ x: input })).y?.data as Float32Array;
    const e = (await embedded.run({ x: input })).y?.data as Float32Array;
    expect(Array.from(a)).toEqual(Array.from(e));
    expect(a.some((v) => v !== 0)).toBe(true);
    await fromFile.release();
    await embedded.release();
  });
});

describe('build-time errors', () => {
  const g = new GraphBuilder('errors');
  const x = g.input('x', 'float32', ['batch', 'seq', 64]);
  const k = g.input('k', 'float32', ['batch', 'kv', 64]);
  const ids = g.input('ids', 'int64', ['batch', 'seq']);

  it('MatMul inner dimension mismatch', () => {
    expect(() => g.matmul(x, g.param('w', [32, 8]))).toThrow(
      new GraphBuildError("MatMul: inner dimensions differ, 'x' (float32 ['batch', 'seq', 64]) x 'w' (float32 [32, 8]) (64 vs 32)"),
    );
  });
  it('broadcasting different symbols', () => {
    expect(() => g.add(x, k)).toThrow(/Add: shapes \['batch', 'seq', 64\] and \['batch', 'kv', 64\] do not broadcast \(axis -2: seq vs kv\)/);
  });
  it('dtype mismatch', () => {
    expect(() => g.add(x, g.scalar(1, 'float64'))).toThrow(/Add: dtype mismatch, 'x' \(float32 .*\) vs .*float64/);
  });
  it('bad reshape', () => {
    expect(() => g.reshape(x, [0, 0, 5, 13])).toThrow(/Reshape: 'x' .* has batch\*seq\*64 elements, spec \[0, 0, 5, 13\] has batch\*seq\*65/);
    expect(g.reshape(x, [-1, 64]).shape).toEqual(['batch*seq', 64]);
    expect(g.reshape(x, [0, 0, 4, 16]).shape).toEqual(['batch', 'seq', 4, 16]);
  });
  it('symbolic lengths: KV-cache concat and last-position slice', async () => {
    const h = new GraphBuilder('kv');
    const past = h.input('past', 'float32', [1, 'past', 4]);
    const cur = h.input('cur', 'float32', [1, 1, 4]);
    const all = h.concat([past, cur], 1);
    expect(all.shape).toEqual([1, 'past+1', 4]);
    const last = h.slice(all, [-1], [SLICE_TO_END], [1]);
    expect(last.shape).toEqual([1, 1, 4]);
    expect(() => h.slice(all, [-2], [-1], [1])).toThrow(/axis 1 of .* is symbolic/);
    h.output(all, 'all');
    h.output(last, 'last');
    const session = await ort.InferenceSession.create(toModel(h));
    const out = await session.run({
      past: new ort.Tensor('float32', Float32Array.from({ length: 8 }, (_, i) => i), [1, 2, 4]),
      cur: new ort.Tensor('float32', new Float32Array([9, 9, 9, 9]), [1, 1, 4]),
    });
    expect(out.all?.dims).toEqual([1, 3, 4]);
    expect(Array.from(out.last?.data as Float32Array)).toEqual([9, 9, 9, 9]);
    await session.release();
  });
  it('causal mask constant', () => {
    const mask = g.causalMask(3, 'float32');
    expect(mask.shape).toEqual([3, 3]);
    expect(Array.from(g.constantData(mask) as Float32Array)).toEqual([0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0].map(Math.fround));
  });
  it('gather needs integer indices and targets must match logits', () => {
    expect(() => g.gather(x, x)).toThrow(/Gather: 'x' .* must be an int32\/int64 tensor/);
    expect(() => g.tokenCrossEntropy(x, g.input('t', 'int64', ['batch', 'kv']))).toThrow(/targets 't' .* must have shape \['batch', 'seq'\]/);
    expect(g.tokenCrossEntropy(x, ids).shape).toEqual([]);
  });
  it('autodiff: non-scalar loss, no path, op without VJP', () => {
    const h = new GraphBuilder('ad');
    const w = h.param('w', [4, 3]);
    const y = h.matmul(h.input('a', 'float32', [2, 4]), w);
    expect(() => buildTrainingGraph(h, { loss: y })).toThrow(new AutodiffError("loss 'MatMul_0_y' (float32 [2, 3]) must be a float scalar (every dim 1)"));
    expect(() => buildTrainingGraph(h, { loss: h.sumAll(h.input('b', 'float32', [2])) })).toThrow(/does not depend on any of the 1 params/);
    expect(() => buildTrainingGraph(h, { loss: h.sumAll(h.topK(y, 2).values) })).toThrow(/no VJP for TopK \(node 'TopK_\d+'\)/);
  });
});

describe('training graph options', () => {
  it('lossScale: a number and a fed scalar scale every gradient', async () => {
    const run = async (lossScale: number | 'input'): Promise<Float32Array> => {
      const g = new GraphBuilder('scale');
      const w = g.param('w', [3]);
      const loss = g.sumAll(g.mul(g.mul(w, w), g.input('x', 'float32', [3])));
      const { gradOutputs } = buildTrainingGraph(g, { loss, lossScale });
      const session = await ort.InferenceSession.create(toModel(g, { params: 'inputs' }));
      const feeds: Record<string, ort.Tensor> = {
        w: new ort.Tensor('float32', new Float32Array([1, 2, 3]), [3]),
        x: new ort.Tensor('float32', new Float32Array([1, 1, 2]), [3]),
      };
      if (lossScale === 'input') feeds.loss_scale = new ort.Tensor('float32', new Float32Array([0.25]), []);
      const out = (await session.run(feeds))[gradOutputs.get('w') as string]?.data as Float32Array;
      await session.release();
      return out;
    };
    expect(Array.from(await run(1))).toEqual([2, 4, 12]);
    expect(Array.from(await run(3))).toEqual([6, 12, 36]);
    expect(Array.from(await run('input'))).toEqual([0.5, 1, 3]);
  });

  it('micro-batch accumulation: summed gradients of the halves equal the full-batch gradient', async () => {
    const g = new GraphBuilder('accumulate');
    const x = g.input('x', 'float64', ['batch', 3]);
    const labels = g.input('labels', 'int64', ['batch']);
    const w = g.param('w', [3, 4], { dtype: 'float64' });
    buildTrainingGraph(g, { loss: g.tokenCrossEntropy(g.tanh(g.matmul(x, w)), labels, { reduction: 'sum' }) });
    const session = await ort.InferenceSession.create(toModel(g, { params: 'inputs' }));
    const wFeed = new ort.Tensor('float64', Float64Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]);
    const xs = Float64Array.from({ length: 12 }, (_, i) => Math.cos(i * 1.7));
    const ys = new BigInt64Array([0n, 3n, 1n, 2n]);
    const grad = async (from: number, to: number): Promise<Float64Array> =>
      (
        await session.run({
          w: wFeed,
          x: new ort.Tensor('float64', xs.slice(from * 3, to * 3), [to - from, 3]),
          labels: new ort.Tensor('int64', ys.slice(from, to), [to - from]),
        })
      )['grad.w']?.data as Float64Array;
    const [full, a, b] = [await grad(0, 4), await grad(0, 2), await grad(2, 4)];
    full.forEach((v, i) => expect((a[i] as number) + (b[i] as number)).toBeCloseTo(v, 12));
    await session.release();
  });

  it('params the loss ignores get zero gradients', async () => {
    const g = new GraphBuilder('unused');
    const w = g.param('w', [2]);
    g.param('unused', [2, 2]);
    const { gradOutputs } = buildTrainingGraph(g, { loss: g.sumAll(g.exp(w)) });
    const session = await ort.InferenceSession.create(toModel(g, { params: 'inputs' }));
    const out = await session.run({ w: new ort.Tensor('float32', new Float32Array([0, 1]), [2]), unused: new ort.Tensor('float32', new Float32Array(4), [2, 2]) });
    expect(Array.from(out[gradOutputs.get('unused') as string]?.data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(Number(out.loss?.data[0])).toBeCloseTo(1 + Math.E, 5);
    await session.release();
  });

  it('the decoder training graph runs at several batch sizes (symbolic batch)', async () => {
    const { graph } = buildDecoderTrainingGraph({ vocab: 10, dModel: 8, layers: 1, heads: 2, kvHeads: 2, ffn: 8, seq: 4 });
    const session = await ort.InferenceSession.create(toModel(graph, { params: 'inputs' }));
    const params = Object.fromEntries([...initParams(graph.params.values(), 2)].map(([n, w]) => [n, new ort.Tensor(w as Float32Array, [...(graph.params.get(n)?.shape ?? [])])]));
    for (const batch of [1, 3]) {
      const ids = new ort.Tensor('int64', BigInt64Array.from({ length: batch * 4 }, (_, i) => BigInt(i % 10)), [batch, 4]);
      const ones = new ort.Tensor('float32', new Float32Array(batch * 4).fill(1), [batch, 4]);
      const out = await session.run({ ...params, input_ids: ids, targets: ids, attention_mask: ones, loss_weights: ones });
      expect(Number(out.loss?.data[0])).toBeCloseTo(Math.log(10), 1);
      expect(out['grad.embed']?.dims).toEqual([10, 8]);
    }
    await session.release();
  });

  it('ArgMax and TopK in inference graphs', async () => {
    const g = new GraphBuilder('select');
    const x = g.input('x', 'float32', [2, 4]);
    g.output(g.argMax(x, -1), 'best');
    const top = g.topK(x, 2, -1);
    g.output(top.values, 'values');
    g.output(top.indices, 'indices');
    const session = await ort.InferenceSession.create(toModel(g));
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 5, 2, 0, 9, 3, 8, 4]), [2, 4]) });
    expect(Array.from(out.best?.data as BigInt64Array)).toEqual([1n, 0n]);
    expect(Array.from(out.values?.data as Float32Array)).toEqual([5, 2, 9, 8]);
    expect(Array.from(out.indices?.data as BigInt64Array)).toEqual([1n, 2n, 0n, 2n]);
    await session.release();
  });
});
