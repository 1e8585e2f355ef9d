// A minimal ONNX writer for test models: the subset of onnx.proto (same field numbers) needed for
// graphs of plain ops with typed inputs, outputs and initializers. Opset 20, IR version 9.
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto3";
package onnx;
message AttributeProto { string name = 1; float f = 2; int64 i = 3; bytes s = 4; repeated int64 ints = 8; int32 type = 20; }
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; repeated AttributeProto attribute = 5; string domain = 7; }
message ModelProto { int64 ir_version = 1; string producer_name = 2; GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; }
message GraphProto { repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message TensorProto { repeated int64 dims = 1; int32 data_type = 2; string name = 8; bytes raw_data = 9; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
`;

const root = protobuf.parse(SCHEMA).root;
const ModelProto = root.lookupType('onnx.ModelProto');

export const ELEM = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 } as const;
export type ElemName = keyof typeof ELEM;

export interface ValueSpec {
  name: string;
  type: ElemName;
  /** numbers are fixed dims, strings symbolic; undefined means unknown rank. */
  dims?: (number | string)[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: { name: string; i?: number; ints?: number[] }[];
}

export interface InitializerSpec {
  name: string;
  dims: number[];
  data: Float32Array;
}

function valueInfo(spec: ValueSpec): object {
  const tensorType: Record<string, unknown> = { elemType: ELEM[spec.type] };
  if (spec.dims !== undefined) {
    tensorType['shape'] = { dim: spec.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  }
  return { name: spec.name, type: { tensorType } };
}

export function buildModel(graph: { inputs: ValueSpec[]; outputs: ValueSpec[]; nodes: NodeSpec[]; initializers?: InitializerSpec[] }): Uint8Array {
  const message = ModelProto.fromObject({
    irVersion: 9,
    producerName: 'mstar-runtime-test',
    opsetImport: [{ domain: '', version: 20 }],
    graph: {
      name: 'test',
      node: graph.nodes.map((n, k) => ({
        name: `n${k}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: (n.attributes ?? []).map((a) => (a.ints !== undefined ? { name: a.name, ints: a.ints, type: 7 } : { name: a.name, i: a.i, type: 2 })),
      })),
      initializer: (graph.initializers ?? []).map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: ELEM.float32,
        rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      })),
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
  });
  return ModelProto.encode(message).finish();
}

/** Z = X + Y over float32 ['batch', 3]. */
export function addModel(): Uint8Array {
  return buildModel({
    inputs: [
      { name: 'X', type: 'float32', dims: ['batch', 3] },
      { name: 'Y', type: 'float32', dims: ['batch', 3] },
    ],
    outputs: [{ name: 'Z', type: 'float32', dims: ['batch', 3] }],
    nodes: [{ op: 'Add', inputs: ['X', 'Y'], outputs: ['Z'] }],
  });
}

/** Two outputs of different dtypes: S = X * 2 (int64), and B = X > 0 (bool). */
export function int64Model(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'X', type: 'int64', dims: [2] }],
    outputs: [
      { name: 'S', type: 'int64', dims: [2] },
      { name: 'B', type: 'bool', dims: [2] },
    ],
    nodes: [
      { op: 'Add', inputs: ['X', 'X'], outputs: ['S'] },
      { op: 'Constant', inputs: [], outputs: ['zero'], attributes: [{ name: 'value_int', i: 0 }] },
      { op: 'Greater', inputs: ['X', 'zero'], outputs: ['B'] },
    ],
  });
}

/**
 * `depth` chained n x n MatMuls against one weight matrix: about 2 * depth * n^3 flops, enough to
 * keep a CPU core busy for hundreds of milliseconds. The weight is scaled so values stay finite.
 */
export function heavyModel(n: number, depth: number): Uint8Array {
  const w = new Float32Array(n * n);
  for (let i = 0; i < n; i++) w[i * n + i] = 1;
  const nodes: NodeSpec[] = [];
  let previous = 'X';
  for (let k = 0; k < depth; k++) {
    const out = k === depth - 1 ? 'Y' : `h${k}`;
    nodes.push({ op: 'MatMul', inputs: [previous, 'W'], outputs: [out] });
    previous = out;
  }
  return buildModel({
    inputs: [{ name: 'X', type: 'float32', dims: [n, n] }],
    outputs: [{ name: 'Y', type: 'float32', dims: [n, n] }],
    nodes,
    initializers: [{ name: 'W', dims: [n, n], data: w }],
  });
}
