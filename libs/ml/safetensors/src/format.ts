import { DTYPES, isDtype } from './dtypes.js';
import type { Dtype, DtypeArrays } from './dtypes.js';
import { SafetensorsError } from './errors.js';

/** One tensor: dtype, shape and its elements in row-major order. */
export type SafeTensor = { [D in Dtype]: { dtype: D; shape: readonly number[]; data: DtypeArrays[D] } }[Dtype];

export interface ParsedSafetensors {
  tensors: Record<string, SafeTensor>;
  /** The `__metadata__` string map; empty when the file has none. */
  metadata: Record<string, string>;
}

const METADATA_KEY = '__metadata__';
// The reference implementation refuses headers above 100 MB; a larger length is a corrupt file.
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The reference writer orders tensors by dtype (descending enum order in the Rust crate, which is
// also descending alignment) and then by name; using the same order makes our files byte-identical.
const WRITE_RANK: Readonly<Record<Dtype, number>> = { I64: 0, F64: 1, F32: 2, I32: 3, BF16: 4, F16: 5, U8: 6 };

// Names come from the file: a tensor called "__proto__" must become a property, not a prototype.
function defineEntry<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError('safetensors is little-endian and this platform is not; typed-array views would be wrong');
}

/** Rust orders `String`s by UTF-8 bytes, which is code-point order, not JS's UTF-16 unit order. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done === true || cb.done === true) return (ca.done === true ? 0 : 1) - (cb.done === true ? 0 : 1);
    const diff = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (diff !== 0) return diff;
  }
}

function checkShape(shape: unknown, tensor: string): number {
  if (!Array.isArray(shape)) throw new SafetensorsError(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, { tensor });
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || (dim as number) < 0) {
      throw new SafetensorsError(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, { tensor });
    }
    count *= dim as number;
  }
  return count;
}

/**
 * Writes tensors in the safetensors format exactly as the reference (Rust) writer does: header JSON
 * with `__metadata__` first, tensors ordered by dtype then name, header padded with spaces to a
 * multiple of 8 bytes so every tensor starts aligned.
 */
export function serialize(tensors: Readonly<Record<string, SafeTensor>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  assertLittleEndian();
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === METADATA_KEY || name.length === 0) throw new SafetensorsError(`"${name}" is not a valid tensor name`);
    const tensor = tensors[name]!;
    if (!isDtype(tensor.dtype)) throw new SafetensorsError(`unsupported dtype ${String(tensor.dtype)}`, { tensor: name });
    if (!DTYPES[tensor.dtype].matches(tensor.data)) {
      throw new SafetensorsError(`dtype ${tensor.dtype} needs a ${DTYPES[tensor.dtype].array.name}, got ${Object.prototype.toString.call(tensor.data)}`, { tensor: name });
    }
    const count = checkShape(tensor.shape, name);
    if (count !== tensor.data.length) {
      throw new SafetensorsError(`shape [${tensor.shape.join(', ')}] has ${count} elements but data has ${tensor.data.length}`, { tensor: name });
    }
  }
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new SafetensorsError(`__metadata__["${key}"] must be a string, got ${typeof value}`);
    }
  }
  names.sort((a, b) => WRITE_RANK[tensors[a]!.dtype] - WRITE_RANK[tensors[b]!.dtype] || compareCodePoints(a, b));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const name of names) {
    const tensor = tensors[name]!;
    const end = offset + tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let cursor = 8 + headerLength;
  for (const name of names) {
    const { data } = tensors[name]!;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor);
    cursor += data.byteLength;
  }
  return out;
}

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

function readEntry(name: string, raw: unknown): Entry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(`header entry must be an object with dtype, shape and data_offsets, got ${JSON.stringify(raw)}`, { tensor: name });
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw new SafetensorsError(`unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`, { tensor: name });
  }
  const count = checkShape(shape, name);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
    throw new SafetensorsError(`data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`, { tensor: name });
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError(`data_offsets [${begin}, ${end}] end before they begin`, { tensor: name });
  const expected = count * DTYPES[dtype].bytes;
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${(shape as number[]).join(', ')}] needs ${expected}`,
      { tensor: name },
    );
  }
  return { name, dtype, shape: shape as number[], count, begin, end };
}

/**
 * Reads a safetensors file. Tensor data are views into `bytes` (no copy) whenever the tensor's
 * absolute position is aligned for its element type, as it always is for files written by the
 * reference writer into a fresh buffer; otherwise that one tensor is copied. Views share memory with
 * `bytes`: writing to one changes the other.
 */
export function parse(bytes: Uint8Array): ParsedSafetensors {
  assertLittleEndian();
  if (bytes.byteLength < 8) {
    throw new SafetensorsError(`file is ${bytes.byteLength} bytes; a safetensors file starts with an 8-byte header length`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    throw new SafetensorsError(`header length ${headerLength} exceeds the ${bytes.byteLength - 8} bytes after the length prefix (or the 100 MB limit): truncated or not safetensors`);
  }
  const headerEnd = 8 + Number(headerLength);
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, headerEnd));
    if (!text.startsWith('{')) throw new Error(`header starts with ${JSON.stringify(text.slice(0, 16))}, not "{"`);
    header = JSON.parse(text);
  } catch (cause) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('header must be a JSON object');
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === METADATA_KEY) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError('__metadata__ must be an object of strings');
      for (const [mk, mv] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new SafetensorsError(`__metadata__["${mk}"] must be a string, got ${JSON.stringify(mv)}`);
        defineEntry(metadata, mk, mv);
      }
    } else {
      entries.push(readEntry(key, raw));
    }
  }

  // The data section must be covered exactly, without holes or overlaps, like the reference reader demands.
  const dataLength = bytes.byteLength - headerEnd;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const entry of entries) {
    if (entry.begin !== expectedBegin) {
      throw new SafetensorsError(
        `data_offsets begin at ${entry.begin} but the previous tensor ends at ${expectedBegin} (tensors must tile the data section without holes or overlap)`,
        { tensor: entry.name },
      );
    }
    if (entry.end > dataLength) {
      throw new SafetensorsError(`data_offsets end at ${entry.end} but the data section holds only ${dataLength} bytes: file truncated`, { tensor: entry.name });
    }
    expectedBegin = entry.end;
  }
  if (expectedBegin !== dataLength) {
    throw new SafetensorsError(`tensors cover ${expectedBegin} bytes of data but the data section holds ${dataLength}: trailing bytes`);
  }

  const tensors: Record<string, SafeTensor> = {};
  for (const entry of entries) {
    const { array, bytes: width } = DTYPES[entry.dtype];
    const absolute = bytes.byteOffset + headerEnd + entry.begin;
    const data = absolute % width === 0
      ? new array(bytes.buffer as ArrayBuffer, absolute, entry.count)
      : new array(bytes.slice(headerEnd + entry.begin, headerEnd + entry.end).buffer, 0, entry.count);
    defineEntry(tensors, entry.name, { dtype: entry.dtype, shape: entry.shape, data } as SafeTensor);
  }
  return { tensors, metadata };
}
