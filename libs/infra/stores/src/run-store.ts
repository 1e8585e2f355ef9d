export interface RunStoreEntry {
  key: string;
  value: Uint8Array;
  /** Strictly increasing across the whole store; the key's current version for `update`. */
  revision: number;
}

export interface RunStoreChange {
  key: string;
  operation: 'put' | 'delete';
  /** Undefined for deletes. */
  value: Uint8Array | undefined;
  revision: number;
}

/** An exact key, or every key below a prefix (`{ prefix: 'runs' }` selects `runs.*`, `runs.a.b`, ...). */
export type WatchSelector = { key: string } | { prefix: string };

export interface WatchOptions {
  /** Ends the iteration when aborted. Breaking out of `for await` ends it too. */
  signal?: AbortSignal;
}

/**
 * Key-value store for run records with optimistic concurrency. Keys are dot-separated tokens
 * (see `assertRunKey`); a prefix selects the keys below it.
 */
export interface RunStore {
  get(key: string): Promise<RunStoreEntry | undefined>;
  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key has no value (never written, or deleted); else `KeyExistsError`. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key is at `expectedRevision`; else `RevisionConflictError`. */
  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number>;
  /** Removes the value (a no-op for a key without one). */
  delete(key: string): Promise<void>;
  /** Keys that hold a value, sorted; with a prefix, only the keys below it. */
  keys(prefix?: string): Promise<string[]>;
  /**
   * The current value of each selected key (oldest revision first), then every later change as
   * it happens, until the loop breaks or `signal` aborts.
   */
  watch(selector: WatchSelector, opts?: WatchOptions): AsyncIterable<RunStoreChange>;
  close(): Promise<void>;
}

export function selectorFilter(selector: WatchSelector): (key: string) => boolean {
  if ('key' in selector) return (k) => k === selector.key;
  const below = `${selector.prefix}.`;
  return (k) => k.startsWith(below);
}
