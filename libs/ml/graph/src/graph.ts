import {
  broadcastShapes,
  canonicalDim,
  divDim,
  dimEq,
  formatShape,
  isStatic,
  mulDims,
  normalizeAxis,
  type Dim,
} from './dims.js';
import { GraphBuildError } from './errors.js';
import { allocate, fromNumbers, isFloat, matchesDtype, onnxDataType, type DType, type TypedArray } from './tensor.js';

/** An end bound meaning "to the end of the axis" (any end >= this counts, as ONNX clamps it). */
export const SLICE_TO_END = 2 ** 53 - 1;

export type AttrValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: { dtype: DType; shape: number[]; data: TypedArray } };

/** A symbolic tensor in a graph: its name, element type and (concrete or symbolic) shape. */
export class Value {
  constructor(
    readonly graph: GraphBuilder,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `'${this.name}' (${this.dtype} ${formatShape(this.shape)})`;
  }
}

export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  /** `undefined` marks an omitted optional input (written as '' in ONNX). */
  readonly inputs: readonly (Value | undefined)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export type ParamInit =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; limit: number }
  | { kind: 'ones' }
  | { kind: 'zeros' };

export interface ParamInfo {
  readonly value: Value;
  readonly shape: readonly number[];
  readonly init: ParamInit;
}

export interface ConstantInfo {
  readonly value: Value;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

export interface ReduceOptions {
  keepdims?: boolean;
}

export interface TokenLossOptions {
  /** Per-position weights, same shape as the targets (not differentiated). */
  weights?: Value;
  /** 1 where the position counts, 0 where it is ignored (padding, prompt tokens); same shape as the targets. */
  mask?: Value;
  /** 'sum' (default): sum of weighted per-position losses; 'mean': divided by the sum of weights*mask (clamped to >= 1e-12). */
  reduction?: 'sum' | 'mean' | 'none';
}

/**
 * Builds an ONNX graph (opset 20) with dtype and shape checking at every op. Node creation order is
 * a topological order, which the reverse-mode pass relies on.
 */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: { value: Value; name: string }[] = [];
  readonly params = new Map<string, ParamInfo>();
  readonly constants = new Map<string, ConstantInfo>();
  private readonly names = new Set<string>();
  private readonly constantCache = new Map<string, Value>();
  private readonly shapeCache = new Map<string, Value>();
  private counter = 0;

  constructor(readonly name: string) {}

  // ---- naming and bookkeeping -------------------------------------------------------------------

  private claim(name: string): string {
    if (this.names.has(name)) throw new GraphBuildError(`graph '${this.name}': the name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    return this.claim(name);
  }

  private own(v: Value, what: string): void {
    if (v.graph !== this) throw new GraphBuildError(`${what}: ${v.toString()} belongs to graph '${v.graph.name}', not '${this.name}'`);
  }

  /** Appends a node; output dtypes/shapes are computed by the caller (the op methods below). */
  addNode(
    opType: string,
    inputs: readonly (Value | undefined)[],
    outputs: readonly { dtype: DType; shape: readonly Dim[] }[],
    attrs: Record<string, AttrValue> = {},
    domain = '',
  ): Value[] {
    for (const v of inputs) if (v !== undefined) this.own(v, opType);
    const nodeName = this.fresh(opType);
    const outs = outputs.map(
      (o, i) => new Value(this, this.claim(outputs.length === 1 ? `${nodeName}_y` : `${nodeName}_y${i}`), o.dtype, o.shape.map(canonicalDim)),
    );
    this.nodes.push({ name: nodeName, opType, domain, inputs, outputs: outs, attrs });
    return outs;
  }

  private node1(opType: string, inputs: readonly (Value | undefined)[], dtype: DType, shape: readonly Dim[], attrs?: Record<string, AttrValue>): Value {
    return this.addNode(opType, inputs, [{ dtype, shape }], attrs)[0] as Value;
  }

  // ---- graph inputs, parameters, constants, outputs ---------------------------------------------

  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    const v = new Value(this, this.claim(name), dtype, shape.map(canonicalDim));
    this.inputs.push(v);
    return v;
  }

  /** A trainable weight: an initializer in inference models, a graph input in training models. */
  param(name: string, shape: readonly number[], options: { dtype?: DType; init?: ParamInit } = {}): Value {
    const dtype = options.dtype ?? 'float32';
    if (!isFloat(dtype)) throw new GraphBuildError(`param '${name}': dtype ${dtype} is not a float type`);
    if (!shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new GraphBuildError(`param '${name}': shape ${formatShape(shape)} must be concrete positive integers`);
    }
    const v = new Value(this, this.claim(name), dtype, [...shape]);
    this.params.set(name, { value: v, shape: [...shape], init: options.init ?? { kind: 'normal', std: 0.02 } });
    return v;
  }

  /** An embedded constant tensor (always an initializer). Scalars and small int vectors are de-duplicated. */
  constant(data: TypedArray, shape: readonly number[], dtype: DType, name?: string): Value {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new GraphBuildError(`constant: ${data.length} elements do not fill shape ${formatShape(shape)}`);
    if (!matchesDtype(data, dtype)) throw new GraphBuildError(`constant: a ${data.constructor.name} cannot hold ${dtype}`);
    const key = name === undefined && size <= 16 ? `${dtype}|${shape.join(',')}|${Array.from(data as ArrayLike<number | bigint>).join(',')}` : undefined;
    const cached = key === undefined ? undefined : this.constantCache.get(key);
    if (cached !== undefined) return cached;
    const v = new Value(this, name === undefined ? this.fresh('const') : this.claim(name), dtype, [...shape]);
    this.constants.set(v.name, { value: v, shape: [...shape], data });
    if (key !== undefined) this.constantCache.set(key, v);
    return v;
  }

  scalar(value: number, dtype: DType): Value {
    return this.constant(fromNumbers(dtype, [value]), [], dtype);
  }

  int64s(values: readonly number[]): Value {
    return this.constant(fromNumbers('int64', values), [values.length], 'int64');
  }

  /** The data of a builder constant, or undefined when `v` is computed at run time. */
  constantData(v: Value): TypedArray | undefined {
    return this.constants.get(v.name)?.value === v ? this.constants.get(v.name)?.data : undefined;
  }

  output(v: Value, name: string): Value {
    this.own(v, 'output');
    if (this.outputs.some((o) => o.name === name)) throw new GraphBuildError(`graph '${this.name}': output '${name}' is declared twice`);
    const isGraphInput = this.inputs.includes(v) || this.params.has(v.name) || this.constants.has(v.name);
    if (v.name === name && !isGraphInput) {
      this.outputs.push({ value: v, name });
      return v;
    }
    this.claim(name);
    const out = new Value(this, name, v.dtype, v.shape);
    this.nodes.push({ name: this.fresh('Identity'), opType: 'Identity', domain: '', inputs: [v], outputs: [out], attrs: {} });
    this.outputs.push({ value: out, name });
    return out;
  }

  // ---- checks -----------------------------------------------------------------------------------

  private sameDtype(op: string, values: readonly Value[]): DType {
    const first = values[0] as Value;
    for (const v of values) {
      this.own(v, op);
      if (v.dtype !== first.dtype) {
        throw new GraphBuildError(`${op}: dtype mismatch, ${first.toString()} vs ${v.toString()}`);
      }
    }
    return first.dtype;
  }

  private requireFloat(op: string, v: Value): void {
    this.own(v, op);
    if (!isFloat(v.dtype)) throw new GraphBuildError(`${op}: ${v.toString()} must be a float tensor`);
  }

  private requireInt(op: string, v: Value): void {
    this.own(v, op);
    if (v.dtype !== 'int64' && v.dtype !== 'int32') throw new GraphBuildError(`${op}: ${v.toString()} must be an int32/int64 tensor`);
  }

  // ---- elementwise ------------------------------------------------------------------------------

  private binary(op: string, a: Value, b: Value): Value {
    const dtype = this.sameDtype(op, [a, b]);
    return this.node1(op, [a, b], dtype, broadcastShapes([a.shape, b.shape], op));
  }

  add(a: Value, b: Value): Value {
    return this.binary('Add', a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary('Sub', a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary('Mul', a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary('Div', a, b);
  }
  pow(a: Value, b: Value): Value {
    this.requireFloat('Pow', a);
    return this.binary('Pow', a, b);
  }

  /** Adds/multiplies by a plain number, as a scalar constant of `x`'s dtype. */
  addScalar(x: Value, c: number): Value {
    return this.add(x, this.scalar(c, x.dtype));
  }
  mulScalar(x: Value, c: number): Value {
    return this.mul(x, this.scalar(c, x.dtype));
  }

  private unaryFloat(op: string, x: Value, attrs?: Record<string, AttrValue>): Value {
    this.requireFloat(op, x);
    return this.node1(op, [x], x.dtype, x.shape, attrs);
  }

  neg(x: Value): Value {
    this.own(x, 'Neg');
    return this.node1('Neg', [x], x.dtype, x.shape);
  }
  abs(x: Value): Value {
    this.own(x, 'Abs');
    return this.node1('Abs', [x], x.dtype, x.shape);
  }
  sqrt(x: Value): Value {
    return this.unaryFloat('Sqrt', x);
  }
  exp(x: Value): Value {
    return this.unaryFloat('Exp', x);
  }
  log(x: Value): Value {
    return this.unaryFloat('Log', x);
  }
  reciprocal(x: Value): Value {
    return this.unaryFloat('Reciprocal', x);
  }
  tanh(x: Value): Value {
    return this.unaryFloat('Tanh', x);
  }
  sigmoid(x: Value): Value {
    return this.unaryFloat('Sigmoid', x);
  }
  relu(x: Value): Value {
    return this.unaryFloat('Relu', x);
  }
  erf(x: Value): Value {
    return this.unaryFloat('Erf', x);
  }
  softplus(x: Value): Value {
    return this.unaryFloat('Softplus', x);
  }
  /** Exact (erf) GELU: the opset-20 `Gelu` op. */
  gelu(x: Value): Value {
    return this.unaryFloat('Gelu', x, { approximate: { kind: 'string', value: 'none' } });
  }
  /** SiLU / swish: x * sigmoid(x). */
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }
  /** SwiGLU: silu(gate) * up. */
  swiglu(gate: Value, up: Value): Value {
    return this.mul(this.silu(gate), up);
  }

  /** Elementwise sum of any number of same-dtype tensors (the `Sum` op; broadcasting). */
  sum(values: readonly Value[]): Value {
    if (values.length === 0) throw new GraphBuildError('Sum: needs at least one input');
    if (values.length === 1) return values[0] as Value;
    const dtype = this.sameDtype('Sum', values);
    return this.node1('Sum', values, dtype, broadcastShapes(values.map((v) => v.shape), 'Sum'));
  }

  private compare(op: string, a: Value, b: Value): Value {
    this.sameDtype(op, [a, b]);
    return this.node1(op, [a, b], 'bool', broadcastShapes([a.shape, b.shape], op));
  }
  equal(a: Value, b: Value): Value {
    return this.compare('Equal', a, b);
  }
  less(a: Value, b: Value): Value {
    return this.compare('Less', a, b);
  }
  greater(a: Value, b: Value): Value {
    return this.compare('Greater', a, b);
  }

  where(cond: Value, a: Value, b: Value): Value {
    this.own(cond, 'Where');
    if (cond.dtype !== 'bool') throw new GraphBuildError(`Where: condition ${cond.toString()} must be bool`);
    const dtype = this.sameDtype('Where', [a, b]);
    return this.node1('Where', [cond, a, b], dtype, broadcastShapes([cond.shape, a.shape, b.shape], 'Where'));
  }

  cast(x: Value, to: DType): Value {
    this.own(x, 'Cast');
    if (x.dtype === to) return x;
    return this.node1('Cast', [x], to, x.shape, { to: { kind: 'int', value: onnxDataType[to] } });
  }

  // ---- linear algebra ---------------------------------------------------------------------------

  /** Batched matrix product with broadcasting over leading axes (both operands rank >= 2). */
  matmul(a: Value, b: Value): Value {
    const dtype = this.sameDtype('MatMul', [a, b]);
    if (a.rank < 2 || b.rank < 2) {
      throw new GraphBuildError(`MatMul: operands must have rank >= 2, got ${a.toString()} and ${b.toString()}`);
    }
    const k1 = a.shape[a.rank - 1] as Dim;
    const k2 = b.shape[b.rank - 2] as Dim;
    if (!dimEq(k1, k2)) {
      throw new GraphBuildError(`MatMul: inner dimensions differ, ${a.toString()} x ${b.toString()} (${String(k1)} vs ${String(k2)})`);
    }
    const batch = broadcastShapes([a.shape.slice(0, -2), b.shape.slice(0, -2)], 'MatMul batch axes');
    return this.node1('MatMul', [a, b], dtype, [...batch, a.shape[a.rank - 2] as Dim, b.shape[b.rank - 1] as Dim]);
  }

  /** 2-D general matrix product op(a) @ op(b) (+ c), op = optional transpose. */
  gemm(a: Value, b: Value, options: { transA?: boolean; transB?: boolean; c?: Value } = {}): Value {
    const dtype = this.sameDtype('Gemm', options.c === undefined ? [a, b] : [a, b, options.c]);
    if (a.rank !== 2 || b.rank !== 2) throw new GraphBuildError(`Gemm: operands must be 2-D, got ${a.toString()} and ${b.toString()}`);
    const [m, k1] = options.transA === true ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const [k2, n] = options.transB === true ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
    if (!dimEq(k1 as Dim, k2 as Dim)) throw new GraphBuildError(`Gemm: inner dimensions differ, ${a.toString()} x ${b.toString()}`);
    const attrs: Record<string, AttrValue> = {};
    if (options.transA === true) attrs.transA = { kind: 'int', value: 1 };
    if (options.transB === true) attrs.transB = { kind: 'int', value: 1 };
    const inputs = options.c === undefined ? [a, b] : [a, b, options.c];
    return this.node1('Gemm', inputs, dtype, [m as Dim, n as Dim], attrs);
  }

  // ---- indexing ---------------------------------------------------------------------------------

  /** `Gather` along `axis` (an embedding lookup is gather(table, ids, 0)). */
  gather(data: Value, indices: Value, axis = 0): Value {
    this.own(data, 'Gather');
    this.requireInt('Gather', indices);
    const ax = normalizeAxis(axis, data.rank, 'Gather');
    const shape = [...data.shape.slice(0, ax), ...indices.shape, ...data.shape.slice(ax + 1)];
    return this.node1('Gather', [data, indices], data.dtype, shape, { axis: { kind: 'int', value: ax } });
  }

  gatherElements(data: Value, indices: Value, axis: number): Value {
    this.own(data, 'GatherElements');
    this.requireInt('GatherElements', indices);
    const ax = normalizeAxis(axis, data.rank, 'GatherElements');
    if (indices.rank !== data.rank) throw new GraphBuildError(`GatherElements: ${indices.toString()} must have the rank of ${data.toString()}`);
    return this.node1('GatherElements', [data, indices], data.dtype, indices.shape, { axis: { kind: 'int', value: ax } });
  }

  scatterND(data: Value, indices: Value, updates: Value, reduction: 'none' | 'add' = 'none'): Value {
    this.sameDtype('ScatterND', [data, updates]);
    this.requireInt('ScatterND', indices);
    return this.node1('ScatterND', [data, indices, updates], data.dtype, data.shape, { reduction: { kind: 'string', value: reduction } });
  }

  scatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction: 'none' | 'add' = 'none'): Value {
    this.sameDtype('ScatterElements', [data, updates]);
    this.requireInt('ScatterElements', indices);
    const ax = normalizeAxis(axis, data.rank, 'ScatterElements');
    return this.node1('ScatterElements', [data, indices, updates], data.dtype, data.shape, {
      axis: { kind: 'int', value: ax },
      reduction: { kind: 'string', value: reduction },
    });
  }

  // ---- normalization and activations over an axis -----------------------------------------------

  /** LayerNormalization over the last axis; Mean and InvStdDev are kept as node outputs for the backward pass. */
  layerNorm(x: Value, scale: Value, bias: Value | undefined, epsilon = 1e-5): Value {
    this.requireFloat('LayerNormalization', x);
    const last = x.shape[x.rank - 1] as Dim;
    for (const p of bias === undefined ? [scale] : [scale, bias]) {
      this.sameDtype('LayerNormalization', [x, p]);
      if (p.rank !== 1 || !dimEq(p.shape[0] as Dim, last)) {
        throw new GraphBuildError(`LayerNormalization: ${p.toString()} must have shape [${String(last)}] to match ${x.toString()}`);
      }
    }
    const statShape = [...x.shape.slice(0, -1), 1];
    const [y] = this.addNode(
      'LayerNormalization',
      bias === undefined ? [x, scale] : [x, scale, bias],
      // Mean and InvStdDev come out in the stash type (float32, the default stash_type) whatever x is.
      [
        { dtype: x.dtype, shape: x.shape },
        { dtype: 'float32', shape: statShape },
        { dtype: 'float32', shape: statShape },
      ],
      { axis: { kind: 'int', value: -1 }, epsilon: { kind: 'float', value: epsilon } },
    );
    return y as Value;
  }

  /**
   * RMSNorm composed of standard ops (opset 20 has no RMSNormalization): x / sqrt(mean(x^2) + eps) * weight.
   * square 'pow' (default) writes Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul, the only pattern ORT
   * fuses into its SimplifiedLayerNormalization kernel (inference graphs). In training graphs the
   * intermediates feed the backward pass, so nothing fuses, and 'mul' (x*x) avoids ORT's generic Pow
   * kernel, measured about 5x slower per element than Mul.
   */
  rmsNorm(x: Value, weight: Value, epsilon = 1e-6, square: 'pow' | 'mul' = 'pow'): Value {
    this.requireFloat('RMSNorm', x);
    const squared = square === 'pow' ? this.pow(x, this.scalar(2, x.dtype)) : this.mul(x, x);
    const ms = this.reduceMean(squared, [-1], { keepdims: true });
    return this.mul(this.div(x, this.sqrt(this.addScalar(ms, epsilon))), weight);
  }

  softmax(x: Value, axis = -1): Value {
    this.requireFloat('Softmax', x);
    return this.node1('Softmax', [x], x.dtype, x.shape, { axis: { kind: 'int', value: normalizeAxis(axis, x.rank, 'Softmax') } });
  }

  logSoftmax(x: Value, axis = -1): Value {
    this.requireFloat('LogSoftmax', x);
    return this.node1('LogSoftmax', [x], x.dtype, x.shape, { axis: { kind: 'int', value: normalizeAxis(axis, x.rank, 'LogSoftmax') } });
  }

  // ---- shape manipulation -----------------------------------------------------------------------

  /** The run-time shape of `x` as an int64 vector: a constant when the shape is concrete. */
  shapeOf(x: Value): Value {
    this.own(x, 'Shape');
    if (isStatic(x.shape)) return this.int64s(x.shape);
    const cached = this.shapeCache.get(x.name);
    if (cached !== undefined) return cached;
    const s = this.node1('Shape', [x], 'int64', [x.rank]);
    this.shapeCache.set(x.name, s);
    return s;
  }

  /**
   * Reshape with ONNX semantics: 0 copies the input dim at that position, -1 is inferred. Symbolic
   * dims may also be given by name (e.g. ['batch', 'seq', 4, 16]) when they appear in the input.
   */
  reshape(x: Value, spec: readonly Dim[]): Value {
    this.own(x, 'Reshape');
    const out: (Dim | undefined)[] = spec.map((d, i) => {
      if (d === 0) {
        const src = x.shape[i];
        if (src === undefined) throw new GraphBuildError(`Reshape: spec ${formatShape(spec)} copies axis ${i}, which ${x.toString()} lacks`);
        return src;
      }
      if (d === -1) return undefined;
      if (typeof d === 'number' && (!Number.isInteger(d) || d < 1)) throw new GraphBuildError(`Reshape: invalid dim ${d} in ${formatShape(spec)}`);
      return d;
    });
    const unknown = out.filter((d) => d === undefined).length;
    if (unknown > 1) throw new GraphBuildError(`Reshape: spec ${formatShape(spec)} has more than one -1`);
    const total = mulDims(x.shape);
    const known = mulDims(out.filter((d): d is Dim => d !== undefined));
    if (unknown === 1) {
      const inferred = divDim(total, known);
      if (inferred === undefined) throw new GraphBuildError(`Reshape: cannot infer -1 reshaping ${x.toString()} to ${formatShape(spec)}`);
      out[out.indexOf(undefined)] = inferred;
    } else if (!dimEq(total, known)) {
      throw new GraphBuildError(`Reshape: ${x.toString()} has ${String(total)} elements, spec ${formatShape(spec)} has ${String(known)}`);
    }
    const shape = out as Dim[];
    const symbolicNamed = spec.some((d) => typeof d === 'string');
    let target: Value;
    if (!symbolicNamed) target = this.int64s(spec as number[]);
    else if (isStatic(shape)) target = this.int64s(shape);
    else {
      // A named symbolic dim is only known at run time, so it must sit where the input has it (copied with 0).
      const numeric = spec.map((d, i) => {
        if (typeof d === 'number') return d;
        if (x.shape[i] !== undefined && dimEq(x.shape[i], d)) return 0;
        throw new GraphBuildError(`Reshape: symbolic dim '${d}' at position ${i} of ${formatShape(spec)} is not at that position in ${x.toString()}; use 0 or -1`);
      });
      target = this.int64s(numeric);
    }
    return this.node1('Reshape', [x, target], x.dtype, shape);
  }

  /** Reshape to another value's (run-time) shape, with `like`'s static shape. */
  reshapeLike(x: Value, like: Value): Value {
    this.own(x, 'Reshape');
    if (!dimEq(mulDims(x.shape), mulDims(like.shape))) throw new GraphBuildError(`Reshape: ${x.toString()} cannot take the shape of ${like.toString()}`);
    return this.node1('Reshape', [x, this.shapeOf(like)], x.dtype, like.shape);
  }

  transpose(x: Value, perm: readonly number[]): Value {
    this.own(x, 'Transpose');
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
      throw new GraphBuildError(`Transpose: perm [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of ${x.toString()}`);
    }
    return this.node1('Transpose', [x], x.dtype, perm.map((p) => x.shape[p] as Dim), { perm: { kind: 'ints', value: [...perm] } });
  }

  concat(values: readonly Value[], axis: number): Value {
    if (values.length === 0) throw new GraphBuildError('Concat: needs at least one input');
    const dtype = this.sameDtype('Concat', values);
    const first = values[0] as Value;
    const ax = normalizeAxis(axis, first.rank, 'Concat');
    let fixed = 0;
    const symbolic: string[] = [];
    for (const v of values) {
      if (v.rank !== first.rank || v.shape.some((d, i) => i !== ax && !dimEq(d, first.shape[i] as Dim))) {
        throw new GraphBuildError(`Concat: ${v.toString()} does not match ${first.toString()} off axis ${ax}`);
      }
      const d = v.shape[ax] as Dim;
      if (typeof d === 'number') fixed += d;
      else symbolic.push(d);
    }
    // A symbolic length (a KV cache's past length) stays an opaque sum such as 'past+1'.
    const shape = [...first.shape];
    shape[ax] = symbolic.length === 0 ? fixed : [...symbolic, ...(fixed > 0 ? [String(fixed)] : [])].join('+');
    return this.node1('Concat', values, dtype, shape, { axis: { kind: 'int', value: ax } });
  }

  /** Slice with static starts/ends (steps of 1); negative indices count from the end of concrete dims. */
  slice(x: Value, starts: readonly number[], ends: readonly number[], axes?: readonly number[]): Value {
    this.own(x, 'Slice');
    const ax = (axes ?? starts.map((_, i) => i)).map((a) => normalizeAxis(a, x.rank, 'Slice'));
    if (starts.length !== ends.length || starts.length !== ax.length) throw new GraphBuildError('Slice: starts, ends and axes differ in length');
    const shape = [...x.shape];
    ax.forEach((a, i) => {
      const d = x.shape[a] as Dim;
      const s = starts[i] as number;
      const e = ends[i] as number;
      if (typeof d === 'number') {
        const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
        shape[a] = Math.max(clamp(e) - clamp(s), 0);
      } else if (s >= 0 && e >= s && e < SLICE_TO_END) {
        shape[a] = e - s;
      } else if (s < 0 && e >= SLICE_TO_END) {
        shape[a] = -s;
      } else {
        throw new GraphBuildError(
          `Slice: axis ${a} of ${x.toString()} is symbolic; use 0 <= start <= end, or a negative start with end = SLICE_TO_END`,
        );
      }
    });
    return this.node1('Slice', [x, this.int64s(starts), this.int64s(ends), this.int64s(ax)], x.dtype, shape);
  }

  /** Split along `axis` into pieces of the given concrete sizes. */
  split(x: Value, sizes: readonly number[], axis: number): Value[] {
    this.own(x, 'Split');
    const ax = normalizeAxis(axis, x.rank, 'Split');
    const total = sizes.reduce((a, b) => a + b, 0);
    if (!dimEq(x.shape[ax] as Dim, total)) throw new GraphBuildError(`Split: sizes [${sizes.join(', ')}] do not add up to axis ${ax} of ${x.toString()}`);
    return this.addNode(
      'Split',
      [x, this.int64s(sizes)],
      sizes.map((s) => {
        const shape = [...x.shape];
        shape[ax] = s;
        return { dtype: x.dtype, shape };
      }),
      { axis: { kind: 'int', value: ax } },
    );
  }

  /** Inserts size-1 axes; `axes` index the output. */
  unsqueeze(x: Value, axes: readonly number[]): Value {
    this.own(x, 'Unsqueeze');
    const rank = x.rank + axes.length;
    const ax = axes.map((a) => normalizeAxis(a, rank, 'Unsqueeze')).sort((a, b) => a - b);
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : (x.shape[j++] as Dim));
    return this.node1('Unsqueeze', [x, this.int64s(ax)], x.dtype, shape);
  }

  squeeze(x: Value, axes: readonly number[]): Value {
    this.own(x, 'Squeeze');
    const ax = axes.map((a) => normalizeAxis(a, x.rank, 'Squeeze'));
    for (const a of ax) if (x.shape[a] !== 1) throw new GraphBuildError(`Squeeze: axis ${a} of ${x.toString()} is not 1`);
    return this.node1('Squeeze', [x, this.int64s(ax)], x.dtype, x.shape.filter((_, i) => !ax.includes(i)));
  }

  /** Broadcasts `x` to `shape` (concrete numbers, or `like` a value whose run-time shape is used). */
  expand(x: Value, shape: readonly number[] | Value): Value {
    this.own(x, 'Expand');
    const target = Array.isArray(shape) ? (shape as number[]) : (shape as Value).shape;
    const out = broadcastShapes([x.shape, target], 'Expand');
    const shapeInput = Array.isArray(shape) ? this.int64s(shape as number[]) : this.shapeOf(shape as Value);
    return this.node1('Expand', [x, shapeInput], x.dtype, out);
  }

  pad(x: Value, pads: readonly number[], value = 0): Value {
    this.own(x, 'Pad');
    if (pads.length !== 2 * x.rank) throw new GraphBuildError(`Pad: needs ${2 * x.rank} pads for ${x.toString()}`);
    const shape = x.shape.map((d, i) => {
      const extra = (pads[i] as number) + (pads[i + x.rank] as number);
      if (extra === 0) return d;
      if (typeof d !== 'number') throw new GraphBuildError(`Pad: axis ${i} of ${x.toString()} is symbolic`);
      return d + extra;
    });
    return this.node1('Pad', [x, this.int64s(pads), this.scalar(value, x.dtype)], x.dtype, shape, { mode: { kind: 'string', value: 'constant' } });
  }

  /** A tensor filled with `value`, shaped like `like` (run-time shape). */
  fillLike(like: Value, value: number, dtype: DType = like.dtype): Value {
    this.own(like, 'ConstantOfShape');
    const fill = fromNumbers(dtype, [value]);
    return this.node1('ConstantOfShape', [this.shapeOf(like)], dtype, like.shape, {
      value: { kind: 'tensor', value: { dtype, shape: [1], data: fill } },
    });
  }

  /** Number of elements of `x` as an int64 scalar. */
  size(x: Value): Value {
    this.own(x, 'Size');
    return this.node1('Size', [x], 'int64', []);
  }

  // ---- reductions -------------------------------------------------------------------------------

  private reduce(op: string, x: Value, axes: readonly number[], options: ReduceOptions): Value {
    this.own(x, op);
    const ax = axes.map((a) => normalizeAxis(a, x.rank, op));
    const keep = options.keepdims ?? false;
    const shape = keep ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
    return this.node1(op, [x, this.int64s(ax)], x.dtype, shape, { keepdims: { kind: 'int', value: keep ? 1 : 0 } });
  }

  reduceSum(x: Value, axes: readonly number[], options: ReduceOptions = {}): Value {
    return this.reduce('ReduceSum', x, axes, options);
  }
  reduceMean(x: Value, axes: readonly number[], options: ReduceOptions = {}): Value {
    this.requireFloat('ReduceMean', x);
    return this.reduce('ReduceMean', x, axes, options);
  }
  reduceMax(x: Value, axes: readonly number[], options: ReduceOptions = {}): Value {
    return this.reduce('ReduceMax', x, axes, options);
  }
  /** Sum of every element, as a scalar. */
  sumAll(x: Value): Value {
    return this.reduceSum(x, x.shape.map((_, i) => i));
  }

  // ---- inference-only selection -----------------------------------------------------------------

  argMax(x: Value, axis = -1, keepdims = false): Value {
    this.own(x, 'ArgMax');
    const ax = normalizeAxis(axis, x.rank, 'ArgMax');
    const shape = keepdims ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
    return this.node1('ArgMax', [x], 'int64', shape, { axis: { kind: 'int', value: ax }, keepdims: { kind: 'int', value: keepdims ? 1 : 0 } });
  }

  topK(x: Value, k: number, axis = -1): { values: Value; indices: Value } {
    this.own(x, 'TopK');
    const ax = normalizeAxis(axis, x.rank, 'TopK');
    const d = x.shape[ax] as Dim;
    if (typeof d === 'number' && k > d) throw new GraphBuildError(`TopK: k=${k} exceeds axis ${ax} of ${x.toString()}`);
    const shape = x.shape.map((s, i) => (i === ax ? k : s));
    const [values, indices] = this.addNode('TopK', [x, this.int64s([k])], [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ], { axis: { kind: 'int', value: ax } });
    return { values: values as Value, indices: indices as Value };
  }

  // ---- composite model pieces -------------------------------------------------------------------

  /**
   * Rotary position embedding on x [..., seq, headDim] with cos/sin tables [seq, headDim] (each half
   * repeated): x*cos + rotateHalf(x)*sin, rotateHalf = concat(-x2, x1).
   */
  rotary(x: Value, cos: Value, sin: Value): Value {
    const d = x.shape[x.rank - 1];
    if (typeof d !== 'number' || d % 2 !== 0) throw new GraphBuildError(`rotary: the last axis of ${x.toString()} must be a concrete even size`);
    const [x1, x2] = this.split(x, [d / 2, d / 2], -1) as [Value, Value];
    const rotated = this.concat([this.neg(x2), x1], -1);
    return this.add(this.mul(x, cos), this.mul(rotated, sin));
  }

  /** Causal additive mask [seq, seq]: 0 on and below the diagonal, `negative` above. */
  causalMask(seq: number, dtype: DType, negative = -1e9): Value {
    const data = allocate(dtype, seq * seq) as Float32Array;
    for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) data[i * seq + j] = negative;
    return this.constant(data, [seq, seq], dtype);
  }

  /**
   * The `SoftmaxCrossEntropyLoss` op without reduction: per-row -log_softmax(scores)[label] for scores
   * [N, C] and labels [N] (every label must be in [0, C)). Its log_prob output is kept for the VJP.
   */
  softmaxCrossEntropy(scores: Value, labels: Value): Value {
    this.requireFloat('SoftmaxCrossEntropyLoss', scores);
    this.requireInt('SoftmaxCrossEntropyLoss', labels);
    if (scores.rank !== 2 || labels.rank !== 1 || !dimEq(scores.shape[0] as Dim, labels.shape[0] as Dim)) {
      throw new GraphBuildError(`SoftmaxCrossEntropyLoss: needs scores [N, C] and labels [N], got ${scores.toString()} and ${labels.toString()}`);
    }
    const [loss] = this.addNode(
      'SoftmaxCrossEntropyLoss',
      [scores, labels],
      [
        { dtype: scores.dtype, shape: [scores.shape[0] as Dim] },
        { dtype: scores.dtype, shape: scores.shape },
      ],
      { reduction: { kind: 'string', value: 'none' } },
    );
    return loss as Value;
  }

  /**
   * Token cross-entropy from logits [..., vocab] and int targets [...] (every target a valid id, also
   * at masked positions): -log_softmax(logits)[target] times weights and mask, reduced per
   * `reduction`. One fused `SoftmaxCrossEntropyLoss` node over the flattened tokens.
   */
  tokenCrossEntropy(logits: Value, targets: Value, options: TokenLossOptions = {}): Value {
    this.requireFloat('tokenCrossEntropy', logits);
    this.requireInt('tokenCrossEntropy', targets);
    const lead = logits.shape.slice(0, -1);
    if (targets.rank !== lead.length || targets.shape.some((d, i) => !dimEq(d, lead[i] as Dim))) {
      throw new GraphBuildError(`tokenCrossEntropy: targets ${targets.toString()} must have shape ${formatShape(lead)} to match logits ${logits.toString()}`);
    }
    const flatLogits = logits.rank === 2 ? logits : this.reshape(logits, [-1, logits.shape[logits.rank - 1] as Dim]);
    const flatTargets = targets.rank === 1 ? targets : this.reshape(this.cast(targets, 'int64'), [-1]);
    const perToken = this.softmaxCrossEntropy(flatLogits, flatTargets);
    return this.weightedReduce('tokenCrossEntropy', targets.rank === 1 ? perToken : this.reshapeLike(perToken, targets), options);
  }

  /**
   * Sigmoid binary cross-entropy with logits z and float targets y in [0, 1] (same shape):
   * softplus(z) - y*z, weighted and masked like `tokenCrossEntropy`.
   */
  sigmoidBinaryCrossEntropy(logits: Value, targets: Value, options: TokenLossOptions = {}): Value {
    this.requireFloat('sigmoidBinaryCrossEntropy', logits);
    this.sameDtype('sigmoidBinaryCrossEntropy', [logits, targets]);
    const perPosition = this.sub(this.softplus(logits), this.mul(targets, logits));
    return this.weightedReduce('sigmoidBinaryCrossEntropy', perPosition, options);
  }

  private weightedReduce(what: string, perPosition: Value, options: TokenLossOptions): Value {
    let weight: Value | undefined;
    for (const w of [options.weights, options.mask]) {
      if (w === undefined) continue;
      const wf = this.cast(w, perPosition.dtype);
      if (wf.rank !== perPosition.rank || wf.shape.some((d, i) => !dimEq(d, perPosition.shape[i] as Dim))) {
        throw new GraphBuildError(`${what}: weights/mask ${w.toString()} must have shape ${formatShape(perPosition.shape)}`);
      }
      weight = weight === undefined ? wf : this.mul(weight, wf);
    }
    const weighted = weight === undefined ? perPosition : this.mul(perPosition, weight);
    const reduction = options.reduction ?? 'sum';
    if (reduction === 'none') return weighted;
    const total = this.sumAll(weighted);
    if (reduction === 'sum') return total;
    const denom = weight === undefined ? this.cast(this.size(perPosition), perPosition.dtype) : this.sumAll(weight);
    return this.div(total, this.node1('Max', [denom, this.scalar(1e-12, perPosition.dtype)], perPosition.dtype, []));
  }
}
