import { SafetensorsError } from './errors.js';
import type { SafeTensor } from './format.js';

// One shared scratch word: reinterpreting bits through a typed array is exact, whereas arithmetic
// reconstruction of subnormals and NaN payloads is easy to get subtly wrong.
const scratchU32 = new Uint32Array(1);
const scratchF32 = new Float32Array(scratchU32.buffer);

/** IEEE 754 binary16 bit pattern -> float32 (exact: every half value is representable). */
export function f16BitsToFloat32(bits: number): number {
  const sign = (bits & 0x8000) << 16;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) {
    scratchU32[0] = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent !== 0) {
    scratchU32[0] = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa === 0) {
    scratchU32[0] = sign;
  } else {
    // Subnormal half: value = mantissa * 2^-24, exact in float32.
    const magnitude = mantissa * 2 ** -24;
    return sign === 0 ? magnitude : -magnitude;
  }
  return scratchF32[0]!;
}

/** bfloat16 bit pattern -> float32: bfloat16 is the top half of a float32. */
export function bf16BitsToFloat32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0]!;
}

/**
 * Widens any numeric tensor to a fresh Float32Array (F16/BF16 exactly; F64, I64 and I32 rounded
 * to the nearest float32). An F32 tensor is returned as is, not copied.
 */
export function toFloat32(tensor: SafeTensor): Float32Array {
  const { data } = tensor;
  switch (tensor.dtype) {
    case 'F32':
      return data as Float32Array;
    case 'F16':
    case 'BF16': {
      const bits = data as Uint16Array;
      const convert = tensor.dtype === 'F16' ? f16BitsToFloat32 : bf16BitsToFloat32;
      const out = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]!);
      return out;
    }
    case 'I64': {
      const ints = data as BigInt64Array;
      const out = new Float32Array(ints.length);
      for (let i = 0; i < ints.length; i++) out[i] = Number(ints[i]!);
      return out;
    }
    case 'F64':
    case 'I32':
    case 'U8':
      return Float32Array.from(data as Float64Array | Int32Array | Uint8Array);
    default:
      throw new SafetensorsError(`cannot widen dtype ${String((tensor as { dtype: unknown }).dtype)} to float32`);
  }
}
