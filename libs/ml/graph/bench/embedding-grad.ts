// Embedding backward: ScatterND(add) into zeros vs a one-hot MatMul, for vocab 4096, dModel 256, 2048 tokens.
import * as ort from 'onnxruntime-node';
import { GraphBuilder, toModel } from '../src/index.js';

const [vocab, d, tokens] = [4096, 256, 2048];

async function time(g: GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<number> {
  const s = await ort.InferenceSession.create(toModel(g));
  for (let i = 0; i < 3; i++) await s.run(feeds);
  const reps = 10;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await s.run(feeds);
  const ms = (performance.now() - t0) / reps;
  await s.release();
  return ms;
}

const feeds = {
  ids: new ort.Tensor('int64', BigInt64Array.from({ length: tokens }, (_, i) => BigInt((i * 7919) % vocab)), [tokens]),
  gy: new ort.Tensor('float32', Float32Array.from({ length: tokens * d }, (_, i) => (i % 13) / 13), [tokens, d]),
};

const scatter = new GraphBuilder('scatter');
{
  const ids = scatter.input('ids', 'int64', [tokens]);
  const gy = scatter.input('gy', 'float32', [tokens, d]);
  const zeros = scatter.constant(new Float32Array(vocab * d), [vocab, d], 'float32');
  scatter.output(scatter.scatterND(zeros, scatter.unsqueeze(ids, [-1]), gy, 'add'), 'grad');
}
const onehot = new GraphBuilder('onehot');
{
  const ids = onehot.input('ids', 'int64', [tokens]);
  const gy = onehot.input('gy', 'float32', [tokens, d]);
  const range = onehot.constant(BigInt64Array.from({ length: vocab }, (_, i) => BigInt(i)), [1, vocab], 'int64');
  const hot = onehot.cast(onehot.equal(onehot.unsqueeze(ids, [-1]), range), 'float32');
  onehot.output(onehot.gemm(hot, gy, { transA: true }), 'grad');
}
console.log(JSON.stringify({ scatterNDms: Number((await time(scatter, feeds)).toFixed(2)), oneHotMatMulMs: Number((await time(onehot, feeds)).toFixed(2)) }));
