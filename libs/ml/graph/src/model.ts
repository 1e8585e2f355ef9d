import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatShape } from './dims.js';
import { GraphBuildError } from './errors.js';
import type { AttrValue, GraphBuilder, GraphNode, Value } from './graph.js';
import {
  AttributeType,
  encodeModel,
  type AttributeMessage,
  type ModelMessage,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from './onnx-proto.js';
import { matchesDtype, onnxDataType, toBytes, type DType, type TypedArray } from './tensor.js';

export const OPSET_VERSION = 20;
export const IR_VERSION = 9;

export interface ModelOptions {
  /** 'initializers' embeds the weights (inference); 'inputs' makes every param a graph input fed each run (training). */
  params?: 'initializers' | 'inputs';
  /** Weight data by param name; required for every param when params = 'initializers'. */
  weights?: ReadonlyMap<string, TypedArray> | Readonly<Record<string, TypedArray>>;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

export interface ExternalDataOptions {
  /** File name of the data file, relative to the model file (ONNX `location`). */
  location: string;
  /** Tensors smaller than this stay inline (default 1024 bytes). */
  thresholdBytes?: number;
  /** Byte alignment of each tensor in the data file (default 4096, so ORT can map it). */
  alignment?: number;
}

export interface ModelWithExternalData {
  model: Uint8Array;
  data: Uint8Array;
  location: string;
}

interface DataSink {
  options: ExternalDataOptions;
  chunks: Uint8Array[];
  length: number;
}

function attrMessage(name: string, a: AttrValue): AttributeMessage {
  switch (a.kind) {
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.value };
    case 'int':
      return { name, type: AttributeType.INT, i: a.value };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: a.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: tensorMessage('', a.value.dtype, a.value.shape, a.value.data, undefined) };
  }
}

function tensorMessage(name: string, dtype: DType, shape: readonly number[], data: TypedArray, sink: DataSink | undefined): TensorMessage {
  const bytes = toBytes(data);
  const base: TensorMessage = { name, dims: [...shape], dataType: onnxDataType[dtype] };
  if (sink === undefined || bytes.byteLength < (sink.options.thresholdBytes ?? 1024)) {
    return { ...base, rawData: bytes };
  }
  const align = sink.options.alignment ?? 4096;
  const pad = (align - (sink.length % align)) % align;
  if (pad > 0) {
    sink.chunks.push(new Uint8Array(pad));
    sink.length += pad;
  }
  const offset = sink.length;
  sink.chunks.push(bytes);
  sink.length += bytes.byteLength;
  return {
    ...base,
    dataLocation: 1,
    externalData: [
      { key: 'location', value: sink.options.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.byteLength) },
    ],
  };
}

function valueInfo(name: string, v: Value): ValueInfoMessage {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxDataType[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Nodes that feed a graph output, in their original (topological) order. */
function liveNodes(g: GraphBuilder): GraphNode[] {
  const needed = new Set(g.outputs.map((o) => o.value.name));
  const live: GraphNode[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i] as GraphNode;
    if (!node.outputs.some((o) => needed.has(o.name))) continue;
    live.push(node);
    for (const inp of node.inputs) if (inp !== undefined) needed.add(inp.name);
  }
  return live.reverse();
}

function weightOf(options: ModelOptions, name: string): TypedArray | undefined {
  const w = options.weights;
  if (w === undefined) return undefined;
  if (w instanceof Map) return (w as ReadonlyMap<string, TypedArray>).get(name);
  return (w as Readonly<Record<string, TypedArray>>)[name];
}

function buildMessage(g: GraphBuilder, options: ModelOptions, sink: DataSink | undefined): ModelMessage {
  if (g.outputs.length === 0) throw new GraphBuildError(`graph '${g.name}' has no outputs`);
  const nodes = liveNodes(g);
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) if (i !== undefined) used.add(i.name);
  for (const o of g.outputs) used.add(o.value.name);

  const mode = options.params ?? 'initializers';
  const initializer: TensorMessage[] = [];
  // Data inputs no output depends on are dropped (ORT would demand a feed for them); params are kept
  // so a training loop can feed every param whatever the loss uses.
  const inputs: ValueInfoMessage[] = g.inputs.filter((v) => used.has(v.name)).map((v) => valueInfo(v.name, v));
  const problems: string[] = [];
  for (const [name, p] of g.params) {
    if (mode === 'inputs') {
      inputs.push(valueInfo(name, p.value));
      continue;
    }
    const data = weightOf(options, name);
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (data === undefined) problems.push(`'${name}' has no weights`);
    else if (!matchesDtype(data, p.value.dtype) || data.length !== size) {
      problems.push(`'${name}' needs ${size} ${p.value.dtype} values for shape ${formatShape(p.shape)}, got ${data.length} in a ${data.constructor.name}`);
    } else initializer.push(tensorMessage(name, p.value.dtype, p.shape, data, sink));
  }
  if (problems.length > 0) throw new GraphBuildError(`graph '${g.name}': bad weights: ${problems.join('; ')}`);
  for (const [name, c] of g.constants) {
    if (used.has(name)) initializer.push(tensorMessage(name, c.value.dtype, c.shape, c.data, sink));
  }

  const node: NodeMessage[] = nodes.map((n) => ({
    name: n.name,
    opType: n.opType,
    ...(n.domain === '' ? {} : { domain: n.domain }),
    input: n.inputs.map((v) => v?.name ?? ''),
    output: n.outputs.map((v) => v.name),
    attribute: Object.entries(n.attrs).map(([k, a]) => attrMessage(k, a)),
  }));

  return {
    irVersion: IR_VERSION,
    opsetImport: [{ version: OPSET_VERSION }],
    producerName: 'mstar-graph',
    producerVersion: '0.0.0',
    ...(options.docString === undefined ? {} : { docString: options.docString }),
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node,
      initializer,
      input: inputs,
      output: g.outputs.map((o) => valueInfo(o.name, o.value)),
    },
  };
}

/** Serializes the graph as one self-contained ONNX model (ModelProto bytes, < 2 GiB). */
export function toModel(g: GraphBuilder, options: ModelOptions = {}): Uint8Array {
  return encodeModel(buildMessage(g, options, undefined));
}

/** Serializes the graph with large tensors moved to a separate data file (TensorProto.data_location = EXTERNAL). */
export function toModelWithExternalData(g: GraphBuilder, options: ModelOptions & { externalData: ExternalDataOptions }): ModelWithExternalData {
  const sink: DataSink = { options: options.externalData, chunks: [], length: 0 };
  const model = encodeModel(buildMessage(g, options, sink));
  const data = new Uint8Array(sink.length);
  let at = 0;
  for (const c of sink.chunks) {
    data.set(c, at);
    at += c.byteLength;
  }
  return { model, data, location: options.externalData.location };
}

/**
 * Writes `<dir>/<fileName>` (and, with external data, the data file beside it) and returns the model
 * path; ORT resolves the data file relative to the model's folder, so load it by path.
 */
export async function saveModel(
  g: GraphBuilder,
  dir: string,
  fileName: string,
  options: ModelOptions & { externalData?: ExternalDataOptions },
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, fileName);
  const { externalData } = options;
  if (externalData === undefined) {
    await writeFile(path, toModel(g, options));
    return path;
  }
  const out = toModelWithExternalData(g, { ...options, externalData });
  await writeFile(join(dir, out.location), out.data);
  await writeFile(path, out.model);
  return path;
}
