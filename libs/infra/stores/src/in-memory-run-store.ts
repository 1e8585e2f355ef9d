import { AsyncQueue, endOnAbort } from './async-queue.js';
import { KeyExistsError, RevisionConflictError } from './errors.js';
import { assertRunKey } from './keys.js';
import {
  selectorFilter,
  type RunStore,
  type RunStoreChange,
  type RunStoreEntry,
  type WatchOptions,
  type WatchSelector,
} from './run-store.js';

/** The single-process default: a map plus a revision counter, with the same semantics as the NATS KV store. */
export function createInMemoryRunStore(): RunStore {
  return new InMemoryRunStore();
}

class InMemoryRunStore implements RunStore {
  private readonly entries = new Map<string, RunStoreEntry>();
  private readonly watchers = new Set<{ matches: (k: string) => boolean; queue: AsyncQueue<RunStoreChange> }>();
  private lastRevision = 0;

  get(key: string): Promise<RunStoreEntry | undefined> {
    return run(() => {
      assertRunKey(key);
      const e = this.entries.get(key);
      return e === undefined ? undefined : { ...e, value: e.value.slice() };
    });
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return run(() => this.write(key, value));
  }

  create(key: string, value: Uint8Array): Promise<number> {
    return run(() => {
      assertRunKey(key);
      if (this.entries.has(key)) throw new KeyExistsError(key);
      return this.write(key, value);
    });
  }

  update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    return run(() => {
      assertRunKey(key);
      const actual = this.entries.get(key)?.revision ?? 0;
      if (actual !== expectedRevision) throw new RevisionConflictError(key, expectedRevision, actual);
      return this.write(key, value);
    });
  }

  delete(key: string): Promise<void> {
    return run(() => {
      assertRunKey(key);
      if (!this.entries.delete(key)) return;
      this.notify({ key, operation: 'delete', value: undefined, revision: ++this.lastRevision });
    });
  }

  keys(prefix?: string): Promise<string[]> {
    return run(() => {
      if (prefix !== undefined) assertRunKey(prefix);
      const matches = prefix === undefined ? () => true : selectorFilter({ prefix });
      return [...this.entries.keys()].filter(matches).sort();
    });
  }

  watch(selector: WatchSelector, opts: WatchOptions = {}): AsyncIterable<RunStoreChange> {
    assertRunKey('key' in selector ? selector.key : selector.prefix);
    const matches = selectorFilter(selector);
    const watcher = {
      matches,
      queue: new AsyncQueue<RunStoreChange>(() => {
        this.watchers.delete(watcher);
        detach();
      }),
    };
    const detach = endOnAbort(watcher.queue, opts.signal);
    const current = [...this.entries.values()].filter((e) => matches(e.key)).sort((a, b) => a.revision - b.revision);
    for (const e of current) watcher.queue.push({ key: e.key, operation: 'put', value: e.value.slice(), revision: e.revision });
    this.watchers.add(watcher);
    return watcher.queue;
  }

  close(): Promise<void> {
    for (const w of [...this.watchers]) w.queue.end();
    return Promise.resolve();
  }

  private write(key: string, value: Uint8Array): number {
    assertRunKey(key);
    const revision = ++this.lastRevision;
    // Copied both ways: callers may reuse their buffers.
    this.entries.set(key, { key, value: value.slice(), revision });
    this.notify({ key, operation: 'put', value: value.slice(), revision });
    return revision;
  }

  private notify(change: RunStoreChange): void {
    for (const w of this.watchers) if (w.matches(change.key)) w.queue.push({ ...change, value: change.value?.slice() });
  }
}

/** Runs synchronous store logic so that its errors reject the returned promise, as I/O errors would. */
function run<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}
