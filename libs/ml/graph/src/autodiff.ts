import { dimEq, formatShape, isStatic, shapeEq, type Dim } from './dims.js';
import { AutodiffError } from './errors.js';
import type { GraphBuilder, GraphNode, Value } from './graph.js';
import { isFloat } from './tensor.js';

interface VjpContext {
  readonly g: GraphBuilder;
  readonly node: GraphNode;
  /** Inputs of the node (undefined for omitted optional inputs). */
  readonly x: readonly (Value | undefined)[];
  readonly y: readonly Value[];
  /** Gradient of the loss w.r.t. each output; undefined where the output does not reach the loss. */
  readonly gy: readonly (Value | undefined)[];
  /** Whether the gradient of input i is needed (it leads back to a parameter). */
  readonly wants: readonly boolean[];
}

/** Returns one gradient per node input (undefined where not wanted or not differentiable). */
type Vjp = (c: VjpContext) => (Value | undefined)[];

function input(c: VjpContext, i: number): Value {
  const v = c.x[i];
  if (v === undefined) throw new AutodiffError(`${c.node.opType} '${c.node.name}': input ${i} is missing`);
  return v;
}

function outGrad(c: VjpContext, i = 0): Value {
  const v = c.gy[i];
  if (v === undefined) throw new AutodiffError(`${c.node.opType} '${c.node.name}': output ${i} has no gradient`);
  return v;
}

function ints(c: VjpContext, i: number): number[] {
  const data = c.g.constantData(input(c, i));
  if (!(data instanceof BigInt64Array)) throw new AutodiffError(`${c.node.opType} '${c.node.name}': input ${i} must be a builder int64 constant to differentiate`);
  return Array.from(data, Number);
}

function intAttr(c: VjpContext, name: string, fallback: number): number {
  const a = c.node.attrs[name];
  return a?.kind === 'int' ? a.value : fallback;
}

/** Sums `grad` over the axes that broadcasting added or stretched, giving `x`'s shape. */
export function unbroadcast(g: GraphBuilder, grad: Value, x: Value): Value {
  if (shapeEq(grad.shape, x.shape)) return grad;
  const lead = grad.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < grad.rank; i++) {
    if (i < lead) axes.push(i);
    else if (dimEq(x.shape[i - lead] as Dim, 1) && !dimEq(grad.shape[i] as Dim, 1)) axes.push(i);
  }
  let r = axes.length > 0 ? g.reduceSum(grad, axes, { keepdims: true }) : grad;
  if (lead > 0) r = g.squeeze(r, Array.from({ length: lead }, (_, i) => i));
  if (!shapeEq(r.shape, x.shape)) {
    throw new AutodiffError(`cannot reduce gradient ${formatShape(grad.shape)} to ${x.toString()}`);
  }
  return r;
}

const zero = (g: GraphBuilder, like: Value): Value => g.scalar(0, like.dtype);

/** Gradient of a reduction, spread back over the reduced axes of x. */
function spread(c: VjpContext): Value {
  const { g } = c;
  const x = input(c, 0);
  const axes = ints(c, 1).map((a) => (a < 0 ? a + x.rank : a));
  const gy = outGrad(c);
  const kept = intAttr(c, 'keepdims', 1) === 1 ? gy : g.unsqueeze(gy, axes);
  return g.expand(kept, x);
}

/** Leading axes of x (all but the last), for LayerNormalization's parameter gradients. */
const leadingAxes = (x: Value): number[] => Array.from({ length: x.rank - 1 }, (_, i) => i);

function matmulVjp(c: VjpContext): (Value | undefined)[] {
  const { g } = c;
  const a = input(c, 0);
  const b = input(c, 1);
  const gy = outGrad(c);
  const swapLast = (v: Value): Value => g.transpose(v, [...Array.from({ length: v.rank - 2 }, (_, i) => i), v.rank - 1, v.rank - 2]);
  let da: Value | undefined;
  let db: Value | undefined;
  const k = a.shape[a.rank - 1] as Dim;
  const n = b.shape[1] as Dim;
  if (b.rank === 2 && typeof k === 'number' && typeof n === 'number') {
    // A weight matrix shared across the batch: flatten the batch into rows so both products are single
    // GEMMs (no broadcast batch to reduce, no materialized transposes).
    const a2 = a.rank === 2 ? a : g.reshape(a, [-1, k]);
    const gy2 = gy.rank === 2 ? gy : g.reshape(gy, [-1, n]);
    if (c.wants[0] === true) {
      const d2 = g.gemm(gy2, b, { transB: true });
      da = a.rank === 2 ? d2 : g.reshapeLike(d2, a);
    }
    if (c.wants[1] === true) db = g.gemm(a2, gy2, { transA: true });
    return [da, db];
  }
  if (c.wants[0] === true) da = unbroadcast(g, g.matmul(gy, swapLast(b)), a);
  if (c.wants[1] === true) db = unbroadcast(g, g.matmul(swapLast(a), gy), b);
  return [da, db];
}

function gemmVjp(c: VjpContext): (Value | undefined)[] {
  const { g } = c;
  const a = input(c, 0);
  const b = input(c, 1);
  const bias = c.x[2];
  const gy = outGrad(c);
  const tA = intAttr(c, 'transA', 0) === 1;
  const tB = intAttr(c, 'transB', 0) === 1;
  for (const name of ['alpha', 'beta']) {
    const attr = c.node.attrs[name];
    if (attr !== undefined && attr.value !== 1) throw new AutodiffError(`Gemm '${c.node.name}': only alpha = beta = 1 is differentiable`);
  }
  let da: Value | undefined;
  let db: Value | undefined;
  if (c.wants[0] === true) da = tA ? g.gemm(b, gy, { transA: tB, transB: true }) : g.gemm(gy, b, { transB: !tB });
  if (c.wants[1] === true) db = tB ? g.gemm(gy, a, { transA: true, transB: tA }) : g.gemm(a, gy, { transA: !tA });
  const dc = bias !== undefined && c.wants[2] === true ? unbroadcast(g, gy, bias) : undefined;
  return [da, db, dc];
}

function layerNormVjp(c: VjpContext): (Value | undefined)[] {
  const { g } = c;
  const x = input(c, 0);
  const scale = input(c, 1);
  const gy = outGrad(c);
  if (intAttr(c, 'axis', -1) !== -1 && intAttr(c, 'axis', -1) !== x.rank - 1) {
    throw new AutodiffError(`LayerNormalization '${c.node.name}': only axis -1 is differentiable`);
  }
  const mean = g.cast(c.y[1] as Value, x.dtype);
  const invStd = g.cast(c.y[2] as Value, x.dtype);
  const xhat = g.mul(g.sub(x, mean), invStd);
  const lead = leadingAxes(x);
  let dx: Value | undefined;
  if (c.wants[0] === true) {
    const gxh = g.mul(gy, scale);
    const m1 = g.reduceMean(gxh, [-1], { keepdims: true });
    const m2 = g.reduceMean(g.mul(gxh, xhat), [-1], { keepdims: true });
    dx = g.mul(invStd, g.sub(g.sub(gxh, m1), g.mul(xhat, m2)));
  }
  const dScale = c.wants[1] === true ? g.reduceSum(g.mul(gy, xhat), lead) : undefined;
  const dBias = c.wants[2] === true ? g.reduceSum(gy, lead) : undefined;
  return [dx, dScale, dBias];
}

function sliceVjp(c: VjpContext): (Value | undefined)[] {
  const { g } = c;
  const x = input(c, 0);
  const starts = ints(c, 1);
  const ends = ints(c, 2);
  const axes = ints(c, 3);
  if (c.x[4] !== undefined && ints(c, 4).some((s) => s !== 1)) throw new AutodiffError(`Slice '${c.node.name}': only step 1 is differentiable`);
  const pads = new Array<number>(2 * x.rank).fill(0);
  axes.forEach((a, i) => {
    const d = x.shape[a];
    if (typeof d !== 'number') throw new AutodiffError(`Slice '${c.node.name}': axis ${a} of ${x.toString()} must be concrete to differentiate`);
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = clamp(starts[i] as number);
    pads[a] = s;
    pads[a + x.rank] = d - Math.max(clamp(ends[i] as number), s);
  });
  return [g.pad(outGrad(c), pads)];
}

const vjps: Record<string, Vjp> = {
  Identity: (c) => [outGrad(c)],
  Add: (c) => [c.wants[0] ? unbroadcast(c.g, outGrad(c), input(c, 0)) : undefined, c.wants[1] ? unbroadcast(c.g, outGrad(c), input(c, 1)) : undefined],
  Sub: (c) => [
    c.wants[0] ? unbroadcast(c.g, outGrad(c), input(c, 0)) : undefined,
    c.wants[1] ? unbroadcast(c.g, c.g.neg(outGrad(c)), input(c, 1)) : undefined,
  ],
  Mul: (c) => {
    const [a, b] = [input(c, 0), input(c, 1)];
    const gy = outGrad(c);
    return [c.wants[0] ? unbroadcast(c.g, c.g.mul(gy, b), a) : undefined, c.wants[1] ? unbroadcast(c.g, c.g.mul(gy, a), b) : undefined];
  },
  Div: (c) => {
    const { g } = c;
    const [a, b] = [input(c, 0), input(c, 1)];
    const gy = outGrad(c);
    const y = c.y[0] as Value;
    return [c.wants[0] ? unbroadcast(g, g.div(gy, b), a) : undefined, c.wants[1] ? unbroadcast(g, g.neg(g.mul(gy, g.div(y, b))), b) : undefined];
  },
  Pow: (c) => {
    const { g } = c;
    const [a, b] = [input(c, 0), input(c, 1)];
    const gy = outGrad(c);
    const y = c.y[0] as Value;
    const exponent = g.constantData(b);
    const isSquare = exponent !== undefined && exponent.length === 1 && Number(exponent[0]) === 2;
    // x^2 is common (RMSNorm): 2x avoids a second generic Pow kernel.
    const slope = isSquare ? g.mulScalar(a, 2) : g.mul(b, g.pow(a, g.sub(b, g.scalar(1, b.dtype))));
    const da = c.wants[0] ? unbroadcast(g, g.mul(gy, slope), a) : undefined;
    const db = c.wants[1] ? unbroadcast(g, g.mul(gy, g.mul(y, g.log(a))), b) : undefined;
    return [da, db];
  },
  Sum: (c) => c.x.map((v, i) => (c.wants[i] === true && v !== undefined ? unbroadcast(c.g, outGrad(c), v) : undefined)),
  Neg: (c) => [c.g.neg(outGrad(c))],
  Abs: (c) => [c.g.mul(outGrad(c), c.g.addNode('Sign', [input(c, 0)], [{ dtype: input(c, 0).dtype, shape: input(c, 0).shape }])[0] as Value)],
  Sqrt: (c) => [c.g.div(c.g.mulScalar(outGrad(c), 0.5), c.y[0] as Value)],
  Exp: (c) => [c.g.mul(outGrad(c), c.y[0] as Value)],
  Log: (c) => [c.g.div(outGrad(c), input(c, 0))],
  Reciprocal: (c) => {
    const y = c.y[0] as Value;
    return [c.g.neg(c.g.mul(outGrad(c), c.g.mul(y, y)))];
  },
  Tanh: (c) => {
    const { g } = c;
    const y = c.y[0] as Value;
    return [g.mul(outGrad(c), g.sub(g.scalar(1, y.dtype), g.mul(y, y)))];
  },
  Sigmoid: (c) => {
    const { g } = c;
    const y = c.y[0] as Value;
    return [g.mul(outGrad(c), g.mul(y, g.sub(g.scalar(1, y.dtype), y)))];
  },
  Relu: (c) => {
    const x = input(c, 0);
    return [c.g.where(c.g.greater(x, zero(c.g, x)), outGrad(c), zero(c.g, x))];
  },
  Erf: (c) => {
    const { g } = c;
    const x = input(c, 0);
    return [g.mul(outGrad(c), g.mulScalar(g.exp(g.neg(g.mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
  Softplus: (c) => [c.g.mul(outGrad(c), c.g.sigmoid(input(c, 0)))],
  Gelu: (c) => {
    const { g } = c;
    const x = input(c, 0);
    const approx = c.node.attrs.approximate;
    if (approx?.kind === 'string' && approx.value !== 'none') throw new AutodiffError(`Gelu '${c.node.name}': only approximate='none' is differentiable`);
    // d/dx x*Phi(x) = Phi(x) + x*phi(x)
    const cdf = g.mulScalar(g.addScalar(g.erf(g.mulScalar(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = g.mulScalar(g.exp(g.mulScalar(g.mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [g.mul(outGrad(c), g.add(cdf, g.mul(x, pdf)))];
  },
  MatMul: matmulVjp,
  Gemm: gemmVjp,
  Gather: (c) => {
    const { g } = c;
    const data = input(c, 0);
    if (intAttr(c, 'axis', 0) !== 0) throw new AutodiffError(`Gather '${c.node.name}': only axis 0 is differentiable`);
    const rows = data.shape.slice(1);
    if (!rows.every((d): d is number => typeof d === 'number')) throw new AutodiffError(`Gather '${c.node.name}': the rows of ${data.toString()} must have a static shape`);
    // ScatterElements, not ScatterND: ORT 1.30's CPU ScatterND with reduction='add' splits the updates
    // over intra-op threads and races on repeated ids (measured with 2 threads: embedding gradients
    // differing run to run by up to 20% of their largest value). ScatterElements adds in order.
    const gy = g.reshape(outGrad(c), [-1, ...rows]);
    const ids = g.reshape(g.cast(input(c, 1), 'int64'), [-1, ...rows.map(() => 1)]);
    return [g.scatterElements(g.fillLike(data, 0), g.expand(ids, gy), gy, 0, 'add'), undefined];
  },
  GatherElements: (c) => {
    const { g } = c;
    const data = input(c, 0);
    return [g.scatterElements(g.fillLike(data, 0), input(c, 1), outGrad(c), intAttr(c, 'axis', 0), 'add'), undefined];
  },
  LayerNormalization: layerNormVjp,
  SoftmaxCrossEntropyLoss: (c) => {
    // d/dscores = (softmax - onehot(label)) * gy: one Exp, one Mul and a scatter of -gy at the labels.
    const { g } = c;
    const reduction = c.node.attrs.reduction;
    if (c.x.length > 2 || c.node.attrs.ignore_index !== undefined || reduction?.kind !== 'string' || reduction.value !== 'none') {
      throw new AutodiffError(`SoftmaxCrossEntropyLoss '${c.node.name}': only reduction='none' without weights or ignore_index is differentiable`);
    }
    if (c.gy[1] !== undefined) throw new AutodiffError(`SoftmaxCrossEntropyLoss '${c.node.name}': its log_prob output is not differentiable`);
    const gy = g.unsqueeze(outGrad(c), [1]);
    const labels = g.unsqueeze(g.cast(input(c, 1), 'int64'), [1]);
    return [g.scatterElements(g.mul(g.exp(c.y[1] as Value), gy), labels, g.neg(gy), 1, 'add'), undefined];
  },
  Softmax: (c) => {
    const { g } = c;
    const y = c.y[0] as Value;
    const axis = intAttr(c, 'axis', -1);
    const gy = outGrad(c);
    return [g.mul(y, g.sub(gy, g.reduceSum(g.mul(gy, y), [axis], { keepdims: true })))];
  },
  LogSoftmax: (c) => {
    const { g } = c;
    const y = c.y[0] as Value;
    const axis = intAttr(c, 'axis', -1);
    const gy = outGrad(c);
    return [g.sub(gy, g.mul(g.exp(y), g.reduceSum(gy, [axis], { keepdims: true })))];
  },
  Reshape: (c) => [c.g.reshapeLike(outGrad(c), input(c, 0)), undefined],
  Unsqueeze: (c) => [c.g.reshapeLike(outGrad(c), input(c, 0)), undefined],
  Squeeze: (c) => [c.g.reshapeLike(outGrad(c), input(c, 0)), undefined],
  Transpose: (c) => {
    const perm = c.node.attrs.perm;
    if (perm?.kind !== 'ints') throw new AutodiffError(`Transpose '${c.node.name}': needs an explicit perm`);
    const inverse = new Array<number>(perm.value.length);
    perm.value.forEach((p, i) => (inverse[p] = i));
    return [c.g.transpose(outGrad(c), inverse)];
  },
  Concat: (c) => {
    const axis = intAttr(c, 'axis', 0);
    const sizes = c.x.map((v) => v?.shape[axis]);
    if (!sizes.every((s): s is number => typeof s === 'number')) throw new AutodiffError(`Concat '${c.node.name}': axis ${axis} must be concrete`);
    const parts = c.g.split(outGrad(c), sizes, axis);
    return parts.map((p, i) => (c.wants[i] === true ? p : undefined));
  },
  Split: (c) => {
    const parts = c.y.map((y, i) => c.gy[i] ?? c.g.fillLike(y, 0));
    return [c.g.concat(parts, intAttr(c, 'axis', 0)), undefined];
  },
  Slice: sliceVjp,
  Expand: (c) => [unbroadcast(c.g, outGrad(c), input(c, 0)), undefined],
  Where: (c) => {
    const { g } = c;
    const [a, b] = [input(c, 1), input(c, 2)];
    const gy = outGrad(c);
    return [
      undefined,
      c.wants[1] ? unbroadcast(g, g.where(input(c, 0), gy, zero(g, gy)), a) : undefined,
      c.wants[2] ? unbroadcast(g, g.where(input(c, 0), zero(g, gy), gy), b) : undefined,
    ];
  },
  Cast: (c) => {
    const x = input(c, 0);
    return [isFloat(x.dtype) ? c.g.cast(outGrad(c), x.dtype) : undefined];
  },
  ReduceSum: (c) => [spread(c), undefined],
  ReduceMean: (c) => {
    const { g } = c;
    const x = input(c, 0);
    const y = c.y[0] as Value;
    const spreadGrad = spread(c);
    if (isStatic(x.shape) && isStatic(y.shape)) {
      const count = x.shape.reduce((p, d) => p * d, 1) / y.shape.reduce((p, d) => p * d, 1);
      return [g.mulScalar(spreadGrad, 1 / count), undefined];
    }
    const count = g.div(g.cast(g.size(x), x.dtype), g.cast(g.size(y), x.dtype));
    return [g.div(spreadGrad, count), undefined];
  },
  ReduceMax: (c) => {
    // Ties send the full gradient to every maximal element.
    const { g } = c;
    const x = input(c, 0);
    const axes = ints(c, 1);
    const keep = intAttr(c, 'keepdims', 1) === 1;
    const yk = keep ? (c.y[0] as Value) : g.unsqueeze(c.y[0] as Value, axes);
    const gk = keep ? outGrad(c) : g.unsqueeze(outGrad(c), axes);
    return [g.where(g.equal(x, yk), g.expand(gk, x), zero(g, x)), undefined];
  },
};

/** Op types with a registered VJP. */
export const differentiableOps: readonly string[] = Object.keys(vjps).sort();

export interface GradientOptions {
  /**
   * Seed of the backward pass, dLoss/dLoss: a number baked into the graph, or 'input' to add a scalar
   * graph input `loss_scale` (e.g. 1/microBatches for accumulation, or a mixed-precision loss scale).
   * Default 1. Gradients are always of loss * scale.
   */
  lossScale?: number | 'input';
}

/**
 * Appends the reverse-mode backward pass of `loss` w.r.t. `params` as ordinary nodes and returns
 * each param's gradient value (zeros for params the loss does not depend on).
 */
export function gradients(g: GraphBuilder, loss: Value, params: readonly Value[], options: GradientOptions = {}): Map<string, Value> {
  if (loss.graph !== g) throw new AutodiffError(`loss ${loss.toString()} is not in graph '${g.name}'`);
  if (!isFloat(loss.dtype) || !loss.shape.every((d) => d === 1)) {
    throw new AutodiffError(`loss ${loss.toString()} must be a float scalar (every dim 1)`);
  }
  const requires = new Set<string>();
  for (const p of params) {
    if (p.graph !== g || !isFloat(p.dtype)) throw new AutodiffError(`cannot differentiate w.r.t. ${p.toString()}: not a float value of graph '${g.name}'`);
    requires.add(p.name);
  }
  const forward = g.nodes.slice();
  for (const node of forward) {
    if (node.inputs.some((v) => v !== undefined && requires.has(v.name))) {
      for (const o of node.outputs) if (isFloat(o.dtype)) requires.add(o.name);
    }
  }
  if (!requires.has(loss.name)) throw new AutodiffError(`loss ${loss.toString()} does not depend on any of the ${params.length} params`);

  const pending = new Map<string, Value[]>();
  const push = (v: Value, grad: Value): void => {
    if (!shapeEq(grad.shape, v.shape) || grad.dtype !== v.dtype) {
      throw new AutodiffError(`gradient ${grad.toString()} does not match ${v.toString()}`);
    }
    const list = pending.get(v.name);
    if (list === undefined) pending.set(v.name, [grad]);
    else list.push(grad);
  };
  const total = (v: Value): Value | undefined => {
    const list = pending.get(v.name);
    if (list === undefined) return undefined;
    // Fan-out: every use contributed a term; sum them once and keep the sum.
    const sum = g.sum(list);
    pending.set(v.name, [sum]);
    return sum;
  };

  const scale = options.lossScale ?? 1;
  const seed = scale === 'input' ? g.input('loss_scale', loss.dtype, []) : g.scalar(scale, loss.dtype);
  push(loss, loss.rank === 0 ? seed : g.expand(seed, loss.shape));

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i] as GraphNode;
    const gy = node.outputs.map((o) => (requires.has(o.name) ? total(o) : undefined));
    if (gy.every((v) => v === undefined)) continue;
    const wants = node.inputs.map((v) => v !== undefined && requires.has(v.name));
    if (!wants.some(Boolean)) continue;
    const vjp = vjps[node.opType];
    if (vjp === undefined) {
      throw new AutodiffError(`no VJP for ${node.opType} (node '${node.name}'), which lies between the params and the loss; supported: ${differentiableOps.join(', ')}`);
    }
    const grads = vjp({ g, node, x: node.inputs, y: node.outputs, gy, wants });
    node.inputs.forEach((v, k) => {
      const grad = grads[k];
      if (v !== undefined && wants[k] === true && grad !== undefined) push(v, grad);
    });
  }

  const out = new Map<string, Value>();
  for (const p of params) out.set(p.name, total(p) ?? g.fillLike(p, 0));
  return out;
}

export interface TrainingGraphOptions extends GradientOptions {
  /** The scalar loss value. */
  loss: Value;
  /** Params to differentiate (default: every `g.param`). */
  params?: readonly Value[];
  /** Output name of the loss (default 'loss'). */
  lossOutput?: string;
  /** Gradient outputs are named `${gradPrefix}${param}` (default 'grad.'). */
  gradPrefix?: string;
}

export interface TrainingGraph {
  lossOutput: string;
  /** Param name -> gradient output name. */
  gradOutputs: Map<string, string>;
}

/** Adds the backward pass and the outputs `loss` and `grad.<param>` to `g` (use toModel with params: 'inputs'). */
export function buildTrainingGraph(g: GraphBuilder, options: TrainingGraphOptions): TrainingGraph {
  const params = options.params ?? [...g.params.values()].map((p) => p.value);
  const lossOutput = options.lossOutput ?? 'loss';
  const prefix = options.gradPrefix ?? 'grad.';
  const grads = gradients(g, options.loss, params, options);
  if (!g.outputs.some((o) => o.name === lossOutput)) g.output(options.loss, lossOutput);
  const gradOutputs = new Map<string, string>();
  for (const [name, grad] of grads) {
    g.output(grad, prefix + name);
    gradOutputs.set(name, prefix + name);
  }
  return { lossOutput, gradOutputs };
}
