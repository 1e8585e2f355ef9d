/** The safetensors dtypes this library reads and writes (spec names). */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

/**
 * Element storage per dtype. F16 and BF16 stay as their raw 16-bit patterns (`Uint16Array`):
 * JavaScript has no half-precision array, and a lossless round trip matters more than convenience;
 * `toFloat32` widens them.
 */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  U8: Uint8Array;
}

export type TensorData = DtypeArrays[Dtype];

interface DtypeInfo {
  readonly bytes: number;
  readonly array: new (buffer: ArrayBuffer, byteOffset: number, length: number) => TensorData;
  readonly matches: (data: unknown) => boolean;
}

export const DTYPES: Readonly<Record<Dtype, DtypeInfo>> = {
  F64: { bytes: 8, array: Float64Array, matches: (d) => d instanceof Float64Array },
  F32: { bytes: 4, array: Float32Array, matches: (d) => d instanceof Float32Array },
  F16: { bytes: 2, array: Uint16Array, matches: (d) => d instanceof Uint16Array },
  BF16: { bytes: 2, array: Uint16Array, matches: (d) => d instanceof Uint16Array },
  I64: { bytes: 8, array: BigInt64Array, matches: (d) => d instanceof BigInt64Array },
  I32: { bytes: 4, array: Int32Array, matches: (d) => d instanceof Int32Array },
  U8: { bytes: 1, array: Uint8Array, matches: (d) => d instanceof Uint8Array },
};

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}
