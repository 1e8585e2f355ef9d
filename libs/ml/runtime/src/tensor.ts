import { InputValidationError } from './errors.js';

/** The element types that cross process and worker boundaries. */
export type TensorType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

export interface TensorArrays {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  /** One byte per element, 0 or 1, as ONNX Runtime stores booleans. */
  bool: Uint8Array;
  uint8: Uint8Array;
}

/** A plain, cloneable tensor: no ORT object, so it can be posted to a worker and back. */
export type PlainTensor = { [T in TensorType]: { type: T; dims: readonly number[]; data: TensorArrays[T] } }[TensorType];

export type Feeds = Readonly<Record<string, PlainTensor>>;
export type Outputs = Record<string, PlainTensor>;

const ARRAY_OF: Readonly<Record<TensorType, { name: string; is: (d: unknown) => boolean }>> = {
  float32: { name: 'Float32Array', is: (d) => d instanceof Float32Array },
  float64: { name: 'Float64Array', is: (d) => d instanceof Float64Array },
  int64: { name: 'BigInt64Array', is: (d) => d instanceof BigInt64Array },
  int32: { name: 'Int32Array', is: (d) => d instanceof Int32Array },
  bool: { name: 'Uint8Array', is: (d) => d instanceof Uint8Array },
  uint8: { name: 'Uint8Array', is: (d) => d instanceof Uint8Array },
};

export function isTensorType(value: unknown): value is TensorType {
  return typeof value === 'string' && Object.hasOwn(ARRAY_OF, value);
}

export function elementCount(dims: readonly number[]): number {
  let count = 1;
  for (const d of dims) count *= d;
  return count;
}

/** Builds a PlainTensor, checking that the array type and length agree with `type` and `dims`. */
export function tensor<T extends TensorType>(type: T, dims: readonly number[], data: TensorArrays[T]): PlainTensor {
  const t = { type, dims, data } as PlainTensor;
  checkTensor('tensor', t);
  return t;
}

/** Throws an InputValidationError naming `name` unless `t` is internally consistent. */
export function checkTensor(name: string, t: PlainTensor): void {
  if (!isTensorType(t.type)) {
    throw new InputValidationError(name, `a tensor type among ${Object.keys(ARRAY_OF).join(', ')}`, JSON.stringify(t.type));
  }
  if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputValidationError(name, 'dims of non-negative integers', JSON.stringify(t.dims));
  }
  const spec = ARRAY_OF[t.type];
  if (!spec.is(t.data)) throw new InputValidationError(name, `a ${spec.name} for ${t.type} data`, Object.prototype.toString.call(t.data));
  const count = elementCount(t.dims);
  if (t.data.length !== count) {
    throw new InputValidationError(name, `${count} elements for dims [${t.dims.join(', ')}]`, `${t.data.length}`);
  }
}
