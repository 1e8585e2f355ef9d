import type { SerializedError } from './errors.js';
import type { ModelInfo } from './metadata.js';
import type { ExecutionProvider, GraphOptimizationLevel, Device } from './session.js';
import type { Feeds, Outputs, PlainTensor } from './tensor.js';

/** Messages between the pool (main thread) and a session worker. Internal: not exported from the package. */
export interface WorkerSessionOptions {
  device: Device;
  intraOpThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
}

export type WorkerRequest =
  | { id: number; op: 'load'; key: string; model: Uint8Array | string; options: WorkerSessionOptions }
  | { id: number; op: 'run'; key: string; feeds: Feeds; outputNames?: readonly string[] }
  | { id: number; op: 'unload'; key: string };

export interface LoadResult extends ModelInfo {
  inputNames: readonly string[];
  outputNames: readonly string[];
  executionProviders: readonly ExecutionProvider[];
}

export type WorkerMessage =
  | { kind: 'reply'; id: number; ok: true; result: LoadResult | Outputs | null }
  | { kind: 'reply'; id: number; ok: false; error: SerializedError }
  | { kind: 'log'; level: 'info' | 'warn'; fields: Record<string, unknown>; message: string };

/**
 * Prepares tensors for `postMessage` with a transfer list. A tensor whose array spans its whole
 * ArrayBuffer is transferred (the sender's array is detached); one that is a view into a larger
 * buffer is copied first, so transferring never detaches memory the sender did not hand over.
 * SharedArrayBuffers are shared, not transferred. With `copy`, nothing is transferred.
 */
export function forTransfer<T extends Readonly<Record<string, PlainTensor>>>(tensors: T, copy: boolean): { tensors: T; transfer: ArrayBuffer[] } {
  if (copy) return { tensors, transfer: [] };
  const transfer = new Set<ArrayBuffer>();
  const out: Record<string, PlainTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const { buffer, byteOffset, byteLength } = t.data;
    if (!(buffer instanceof ArrayBuffer)) {
      out[name] = t;
    } else if (byteOffset === 0 && byteLength === buffer.byteLength) {
      transfer.add(buffer);
      out[name] = t;
    } else {
      const own = { ...t, data: t.data.slice() } as PlainTensor;
      transfer.add(own.data.buffer as ArrayBuffer);
      out[name] = own;
    }
  }
  return { tensors: out as T, transfer: [...transfer] };
}
