import type { Outputs, PlainTensor } from '@mstar/runtime';
import { ModelOutputError } from './errors.js';

/** Reads a float32 output and checks its leading dims (undefined entries accept any size). */
export function floatOutput(outputs: Outputs, graph: string, name: string, dims: readonly (number | undefined)[]): PlainTensor & { type: 'float32' } {
  const t = outputs[name];
  if (t === undefined) throw new ModelOutputError(`${graph} graph returned no '${name}' output (got ${Object.keys(outputs).join(', ')})`);
  if (t.type !== 'float32') throw new ModelOutputError(`${graph} output '${name}' is ${t.type}; float32 is expected`);
  if (t.dims.length !== dims.length || dims.some((d, i) => d !== undefined && t.dims[i] !== d)) {
    throw new ModelOutputError(`${graph} output '${name}' has dims [${t.dims.join(', ')}], expected [${dims.map((d) => d ?? '?').join(', ')}]`);
  }
  return t;
}

/**
 * New tensors made of the given batch rows (axis 0) of `source`, in the given order; a row may
 * repeat. This one copy both tiles a prompt's prefix cache over its K samples and drops finished rows.
 */
export function selectRows(source: PlainTensor & { type: 'float32' }, rows: readonly number[]): PlainTensor & { type: 'float32' } {
  const [batch = 0, ...rest] = source.dims;
  const rowSize = batch === 0 ? 0 : source.data.length / batch;
  const data = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => data.set(source.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return { type: 'float32', dims: [rows.length, ...rest], data };
}

export function int64Tensor(dims: readonly number[], fill: (index: number) => number): PlainTensor {
  const size = dims.reduce((a, b) => a * b, 1);
  const data = new BigInt64Array(size);
  for (let i = 0; i < size; i++) data[i] = BigInt(fill(i));
  return { type: 'int64', dims, data };
}
