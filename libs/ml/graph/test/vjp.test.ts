import { describe, expect, it } from 'vitest';
import { differentiableOps, type GraphBuilder, type Value } from '../src/index.js';
import { checkGradient, type FeedSpec, type ParamSpec } from './helpers.js';

interface Case {
  name: string;
  params: ParamSpec[];
  feeds?: FeedSpec[];
  build: (g: GraphBuilder, p: Value[], f: Value[]) => Value;
  compute?: 'float32';
  eps?: number;
}

const p = (name: string, shape: number[], domain?: ParamSpec['domain']): ParamSpec => (domain === undefined ? { name, shape } : { name, shape, domain });
const first = (v: Value[]): Value => v[0] as Value;
const second = (v: Value[]): Value => v[1] as Value;

const ids = new BigInt64Array([3n, 1n, 3n, 0n, 4n, 1n]);
const causal = Uint8Array.from({ length: 16 }, (_, k) => (k % 4 <= Math.floor(k / 4) ? 1 : 0));

const cases: Case[] = [
  { name: 'Add (broadcast)', params: [p('a', [2, 3, 4]), p('b', [3, 1])], build: (g, v) => g.add(first(v), second(v)) },
  { name: 'Sub (broadcast)', params: [p('a', [3, 1]), p('b', [2, 3, 4])], build: (g, v) => g.sub(first(v), second(v)) },
  { name: 'Mul (broadcast)', params: [p('a', [2, 3, 4]), p('b', [4])], build: (g, v) => g.mul(first(v), second(v)) },
  { name: 'Div (broadcast)', params: [p('a', [2, 3]), p('b', [2, 1], 'awayFromZero')], build: (g, v) => g.div(first(v), second(v)) },
  { name: 'Pow', params: [p('a', [3, 4], 'positive'), p('b', [4])], build: (g, v) => g.pow(first(v), second(v)) },
  { name: 'Pow (constant exponent)', params: [p('a', [3, 4], 'positive')], build: (g, v) => g.pow(first(v), g.scalar(1.5, 'float64')) },
  { name: 'Pow (square)', params: [p('a', [3, 4])], build: (g, v) => g.pow(first(v), g.scalar(2, 'float64')) },
  { name: 'Identity', params: [p('x', [3])], build: (g, v) => g.exp(g.addNode('Identity', [first(v)], [{ dtype: 'float64', shape: [3] }])[0] as Value) },
  { name: 'Neg', params: [p('x', [5])], build: (g, v) => g.neg(first(v)) },
  { name: 'Abs', params: [p('x', [6], 'awayFromZero')], build: (g, v) => g.abs(first(v)) },
  { name: 'Sqrt', params: [p('x', [5], 'positive')], build: (g, v) => g.sqrt(first(v)) },
  { name: 'Exp', params: [p('x', [5])], build: (g, v) => g.exp(first(v)) },
  { name: 'Log', params: [p('x', [5], 'positive')], build: (g, v) => g.log(first(v)) },
  { name: 'Reciprocal', params: [p('x', [5], 'awayFromZero')], build: (g, v) => g.reciprocal(first(v)) },
  { name: 'Tanh', params: [p('x', [5])], build: (g, v) => g.tanh(first(v)) },
  { name: 'Sigmoid', params: [p('x', [5])], build: (g, v) => g.sigmoid(first(v)) },
  { name: 'Relu', params: [p('x', [8], 'awayFromZero')], build: (g, v) => g.relu(first(v)) },
  { name: 'Erf (float32)', params: [p('x', [6])], build: (g, v) => g.erf(first(v)), compute: 'float32' },
  { name: 'Softplus (float32)', params: [p('x', [6])], build: (g, v) => g.softplus(first(v)), compute: 'float32' },
  { name: 'Gelu (float32)', params: [p('x', [2, 6])], build: (g, v) => g.gelu(first(v)), compute: 'float32' },
  { name: 'SiLU', params: [p('x', [6])], build: (g, v) => g.silu(first(v)) },
  { name: 'SwiGLU', params: [p('gate', [2, 4]), p('up', [2, 4])], build: (g, v) => g.swiglu(first(v), second(v)) },
  { name: 'Sum (3 inputs, broadcast)', params: [p('a', [2, 3]), p('b', [3]), p('c', [2, 1])], build: (g, v) => g.sum(v) },
  { name: 'fan-out (x*x + x)', params: [p('x', [4])], build: (g, v) => g.add(g.mul(first(v), first(v)), first(v)) },
  { name: 'MatMul (batched, broadcast)', params: [p('a', [2, 3, 4, 5]), p('b', [3, 5, 2])], build: (g, v) => g.matmul(first(v), second(v)) },
  { name: 'MatMul (activation x weight)', params: [p('x', [2, 3, 4]), p('w', [4, 5])], build: (g, v) => g.matmul(first(v), second(v)) },
  { name: 'MatMul (2-D)', params: [p('a', [3, 4]), p('b', [4, 2])], build: (g, v) => g.matmul(first(v), second(v)) },
  { name: 'Gemm (transA, bias)', params: [p('a', [4, 3]), p('b', [4, 2]), p('c', [2])], build: (g, v) => g.gemm(first(v), second(v), { transA: true, c: v[2] as Value }) },
  { name: 'Gemm (transB)', params: [p('a', [3, 4]), p('b', [2, 4])], build: (g, v) => g.gemm(first(v), second(v), { transB: true }) },
  { name: 'Gemm (transA, transB)', params: [p('a', [4, 3]), p('b', [2, 4])], build: (g, v) => g.gemm(first(v), second(v), { transA: true, transB: true }) },
  {
    name: 'Gather (embedding, repeated ids)',
    params: [p('table', [5, 3])],
    feeds: [{ name: 'ids', dtype: 'int64', shape: [2, 3], data: ids }],
    build: (g, v, f) => g.gather(first(v), first(f), 0),
  },
  {
    name: 'GatherElements',
    params: [p('x', [2, 5])],
    feeds: [{ name: 'idx', dtype: 'int64', shape: [2, 3], data: ids }],
    build: (g, v, f) => g.gatherElements(first(v), first(f), 1),
  },
  { name: 'LayerNormalization (scale, bias)', params: [p('x', [2, 3, 6]), p('s', [6]), p('b', [6])], build: (g, v) => g.layerNorm(first(v), second(v), v[2]) },
  { name: 'LayerNormalization (no bias)', params: [p('x', [4, 5]), p('s', [5])], build: (g, v) => g.layerNorm(first(v), second(v), undefined) },
  { name: 'RMSNorm (composed, Pow form)', params: [p('x', [2, 3, 6]), p('w', [6])], build: (g, v) => g.rmsNorm(first(v), second(v)) },
  { name: 'RMSNorm (composed, Mul form)', params: [p('x', [2, 3, 6]), p('w', [6])], build: (g, v) => g.rmsNorm(first(v), second(v), 1e-6, 'mul') },
  { name: 'Softmax', params: [p('x', [2, 3, 5])], build: (g, v) => g.softmax(first(v), -1) },
  { name: 'Softmax (axis 1)', params: [p('x', [2, 3, 5])], build: (g, v) => g.softmax(first(v), 1) },
  { name: 'LogSoftmax', params: [p('x', [3, 5])], build: (g, v) => g.logSoftmax(first(v), -1) },
  { name: 'Reshape', params: [p('x', [2, 3, 4])], build: (g, v) => g.mul(g.reshape(first(v), [0, -1, 2]), g.reshape(first(v), [2, 6, 2])) },
  { name: 'Transpose', params: [p('x', [2, 3, 4]), p('w', [4, 2, 3])], build: (g, v) => g.mul(g.transpose(first(v), [2, 0, 1]), second(v)) },
  { name: 'Unsqueeze / Squeeze', params: [p('x', [3, 4])], build: (g, v) => g.squeeze(g.mul(g.unsqueeze(first(v), [0, 2]), g.unsqueeze(first(v), [0, 2])), [0]) },
  { name: 'Concat', params: [p('a', [2, 3]), p('b', [2, 2])], build: (g, v) => g.exp(g.concat([first(v), second(v), first(v)], 1)) },
  { name: 'Split (one output unused)', params: [p('x', [2, 7])], build: (g, v) => g.mul(first(g.split(first(v), [2, 4, 1], 1)), first(g.split(first(v), [2, 5], 1))) },
  { name: 'Slice (negative bounds)', params: [p('x', [4, 6])], build: (g, v) => g.exp(g.slice(first(v), [1, -4], [3, -1], [0, 1])) },
  { name: 'Expand', params: [p('x', [3, 1])], build: (g, v) => g.mul(g.expand(first(v), [2, 3, 4]), g.expand(first(v), [2, 3, 4])) },
  {
    name: 'Where (constant mask)',
    params: [p('a', [4, 4]), p('b', [4])],
    feeds: [{ name: 'mask', dtype: 'bool', shape: [4, 4], data: causal }],
    build: (g, v, f) => g.where(first(f), first(v), second(v)),
  },
  { name: 'Cast (float64 -> float32 -> float64)', params: [p('x', [5])], build: (g, v) => g.cast(g.mul(g.cast(first(v), 'float32'), g.cast(first(v), 'float32')), 'float64'), eps: 1e-2 },
  { name: 'ReduceSum', params: [p('x', [2, 3, 4])], build: (g, v) => g.exp(g.reduceSum(first(v), [0, 2])) },
  { name: 'ReduceSum (keepdims)', params: [p('x', [2, 3, 4])], build: (g, v) => g.exp(g.reduceSum(first(v), [1], { keepdims: true })) },
  { name: 'ReduceMean', params: [p('x', [2, 3, 4])], build: (g, v) => g.exp(g.reduceMean(first(v), [-1])) },
  { name: 'ReduceMax', params: [p('x', [3, 5])], build: (g, v) => g.exp(g.reduceMax(first(v), [1])) },
  {
    name: 'rotary embedding',
    params: [p('x', [2, 3, 4])],
    feeds: [
      { name: 'cos', dtype: 'float64', shape: [3, 4], data: Float64Array.from({ length: 12 }, (_, k) => Math.cos(k / 3)) },
      { name: 'sin', dtype: 'float64', shape: [3, 4], data: Float64Array.from({ length: 12 }, (_, k) => Math.sin(k / 3)) },
    ],
    build: (g, v, f) => g.rotary(first(v), first(f), second(f)),
  },
  {
    name: 'SoftmaxCrossEntropyLoss (per row)',
    params: [p('scores', [6, 5])],
    feeds: [{ name: 'labels', dtype: 'int64', shape: [6], data: ids }],
    build: (g, v, f) => g.softmaxCrossEntropy(first(v), first(f)),
  },
  {
    name: 'token cross-entropy (weights, ignore mask, mean)',
    params: [p('logits', [2, 3, 5])],
    feeds: [
      { name: 'targets', dtype: 'int64', shape: [2, 3], data: ids },
      { name: 'w', dtype: 'float64', shape: [2, 3], data: new Float64Array([1, 0.5, 2, 1, 1, 0.25]) },
      { name: 'mask', dtype: 'float64', shape: [2, 3], data: new Float64Array([1, 1, 0, 1, 0, 1]) },
    ],
    build: (g, v, f) => g.tokenCrossEntropy(first(v), first(f), { weights: second(f), mask: f[2] as Value, reduction: 'mean' }),
  },
  {
    name: 'sigmoid binary cross-entropy (weights, float32)',
    params: [p('z', [2, 4])],
    feeds: [
      { name: 'y', dtype: 'float32', shape: [2, 4], data: new Float32Array([1, 0, 0.7, 1, 0, 0, 1, 0.2]) },
      { name: 'w', dtype: 'float32', shape: [2, 4], data: new Float32Array([1, 1, 2, 0, 1, 0.5, 1, 1]) },
    ],
    build: (g, v, f) => g.sigmoidBinaryCrossEntropy(first(v), first(f), { weights: second(f), reduction: 'sum' }),
    compute: 'float32',
  },
];

describe('VJP directional-derivative checks', () => {
  const exercised = new Set<string>();
  it.each(cases)('$name', async (c) => {
    const r = await checkGradient({ ...c });
    for (const op of r.opTypes ?? []) exercised.add(op);
    expect(Number.isFinite(r.analytic)).toBe(true);
    expect(Math.abs(r.analytic)).toBeGreaterThan(1e-6);
    expect(r.relError, `analytic ${r.analytic} vs numeric ${r.numeric}`).toBeLessThan(c.compute === 'float32' || c.eps !== undefined ? 1e-3 : 1e-6);
    if (process.env.GRADCHECK_LOG !== undefined) console.log(`${c.name}: rel error ${r.relError.toExponential(2)}`);
  });

  it('every registered VJP was exercised above', () => {
    expect(differentiableOps.filter((op) => !exercised.has(op))).toEqual([]);
  });
});
