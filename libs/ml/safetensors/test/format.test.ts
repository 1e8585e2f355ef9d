import { describe, expect, it } from 'vitest';
import { SafetensorsError, bf16BitsToFloat32, f16BitsToFloat32, parse, serialize, toFloat32 } from '@mstar/safetensors';
import type { SafeTensor } from '@mstar/safetensors';

function le64(n: number): number[] {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return [...out];
}

function fileOf(header: string, data: number[]): Uint8Array {
  const json = [...new TextEncoder().encode(header)];
  return Uint8Array.from([...le64(json.length), ...json, ...data]);
}

// Built by hand from the spec: u64 LE header size, header JSON (metadata first, then tensors ordered
// by dtype I64 > F32 as the Rust writer does, then by name), spaces up to a multiple of 8, raw LE data.
const GOLDEN_HEADER = '{"__metadata__":{"format":"pt"},"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[16,20]}}';
const GOLDEN_PAD = ' '.repeat((8 - (GOLDEN_HEADER.length % 8)) % 8);
const GOLDEN_DATA = [
  3, 0, 0, 0, 0, 0, 0, 0, // ids = [3n]
  0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, // a = [1, -2]
  0x00, 0x00, 0x40, 0x40, // b = [[3]]
];
const GOLDEN = fileOf(GOLDEN_HEADER + GOLDEN_PAD, GOLDEN_DATA);

describe('serialize', () => {
  it('writes the hand-built golden file byte for byte', () => {
    const bytes = serialize(
      {
        b: { dtype: 'F32', shape: [1, 1], data: new Float32Array([3]) },
        a: { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) },
        ids: { dtype: 'I64', shape: [1], data: new BigInt64Array([3n]) },
      },
      { format: 'pt' },
    );
    expect(GOLDEN_PAD.length).toBeGreaterThan(0);
    expect([...bytes]).toEqual([...GOLDEN]);
  });

  it('pads the header with spaces to a multiple of 8 and omits __metadata__ when none is given', () => {
    const bytes = serialize({ x: { dtype: 'U8', shape: [3], data: new Uint8Array([7, 8, 9]) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header).toBe('{"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}'.padEnd(n, ' '));
    expect([...bytes.subarray(8 + n)]).toEqual([7, 8, 9]);
  });

  it('rejects data that does not match dtype or shape, naming the tensor', () => {
    expect(() => serialize({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /tensor "w": shape \[2, 2\] has 4 elements but data has 3/,
    );
    expect(() => serialize({ w: { dtype: 'F32', shape: [1], data: new Float64Array(1) } as unknown as SafeTensor })).toThrow(
      /tensor "w": dtype F32 needs a Float32Array/,
    );
    expect(() => serialize({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } })).toThrow(SafetensorsError);
  });
});

describe('parse', () => {
  it('reads the golden file', () => {
    const { tensors, metadata } = parse(GOLDEN);
    expect(metadata).toEqual({ format: 'pt' });
    expect(Object.keys(tensors).sort()).toEqual(['a', 'b', 'ids']);
    expect(tensors['a']).toEqual({ dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) });
    expect(tensors['b']!.shape).toEqual([1, 1]);
    expect([...(tensors['ids']!.data as BigInt64Array)]).toEqual([3n]);
  });

  it('round-trips every dtype and returns zero-copy views when aligned', () => {
    const input: Record<string, SafeTensor> = {
      f64: { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -0]) },
      f32: { dtype: 'F32', shape: [3], data: new Float32Array([0.1, NaN, Infinity]) },
      f16: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      bf16: { dtype: 'BF16', shape: [1], data: new Uint16Array([0xbf80]) },
      i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 5n]) },
      i32: { dtype: 'I32', shape: [1, 2], data: new Int32Array([-7, 2 ** 31 - 1]) },
      u8: { dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
    };
    const bytes = serialize(input, { note: 'ü' });
    const out = parse(bytes);
    expect(out.metadata).toEqual({ note: 'ü' });
    for (const [name, tensor] of Object.entries(input)) {
      expect(out.tensors[name]!.dtype).toBe(tensor.dtype);
      expect(out.tensors[name]!.shape).toEqual(tensor.shape);
      expect([...out.tensors[name]!.data]).toEqual([...tensor.data]);
      if (tensor.data.length > 0) expect(out.tensors[name]!.data.buffer).toBe(bytes.buffer);
    }
    // A view: writing through the parsed tensor changes the file bytes.
    (out.tensors['f32']!.data as Float32Array)[0] = 1;
    expect((parse(bytes).tensors['f32']!.data as Float32Array)[0]).toBe(1);
  });

  it('copies a tensor whose position is misaligned in the caller buffer', () => {
    const bytes = serialize({ x: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, 2.5]) } });
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const { tensors } = parse(shifted.subarray(1));
    expect([...tensors['x']!.data]).toEqual([1.5, 2.5]);
    expect(tensors['x']!.data.buffer).not.toBe(shifted.buffer);
  });

  it('names the problem in truncated and invalid files', () => {
    expect(() => parse(new Uint8Array(5))).toThrow(/file is 5 bytes; a safetensors file starts with an 8-byte header length/);
    expect(() => parse(GOLDEN.subarray(0, 40))).toThrow(/header length \d+ exceeds the 32 bytes/);
    expect(() => parse(GOLDEN.subarray(0, GOLDEN.length - 2))).toThrow(/tensor "b": data_offsets end at 20 but the data section holds only 18 bytes: file truncated/);
    expect(() => parse(fileOf('[1]', []))).toThrow(/header is not valid UTF-8 JSON/);
    expect(() => parse(fileOf('{"x":1', []))).toThrow(/header is not valid UTF-8 JSON/);
    expect(() => parse(fileOf('{"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}', [0]))).toThrow(/tensor "x": unsupported dtype "Q8"/);
    expect(() => parse(fileOf('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]))).toThrow(
      /tensor "x": data_offsets \[0, 4\] span 4 bytes but F32 \[2\] needs 8/,
    );
    expect(() => parse(fileOf('{"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [0, 0]))).toThrow(/tensor "x": data_offsets begin at 1 but the previous tensor ends at 0/);
    expect(() => parse(fileOf('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [0, 0]))).toThrow(/trailing bytes/);
    expect(() => parse(fileOf('{"__metadata__":{"k":1}}', []))).toThrow(/__metadata__\["k"\] must be a string/);
    const bad = fileOf('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [0]);
    bad[10] = 0xff;
    expect(() => parse(bad)).toThrow(SafetensorsError);
  });
});

describe('half precision', () => {
  it('widens F16 bit patterns exactly', () => {
    const cases: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x0400, 2 ** -14],
      [0x3555, 0.333251953125], [0x8000, -0], [0x7c00, Infinity], [0xfc00, -Infinity],
    ];
    for (const [bits, value] of cases) expect(Object.is(f16BitsToFloat32(bits), value)).toBe(true);
    expect(f16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it('widens BF16 and converts whole tensors', () => {
    expect(bf16BitsToFloat32(0x3f80)).toBe(1);
    expect(bf16BitsToFloat32(0xc049)).toBe(-3.140625);
    expect([...toFloat32({ dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) })]).toEqual([1, -2]);
    expect([...toFloat32({ dtype: 'BF16', shape: [1], data: new Uint16Array([0x4040]) })]).toEqual([3]);
    expect([...toFloat32({ dtype: 'I64', shape: [1], data: new BigInt64Array([-4n]) })]).toEqual([-4]);
    const f32 = new Float32Array([1]);
    expect(toFloat32({ dtype: 'F32', shape: [1], data: f32 })).toBe(f32);
  });
});
