import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { AsyncQueue, endOnAbort } from './async-queue.js';
import { KeyExistsError, RevisionConflictError } from './errors.js';
import { assertRunKey } from './keys.js';
import { connectForStore, type NatsStoreConnectionOptions } from './nats-connection.js';
import type { RunStore, RunStoreChange, RunStoreEntry, WatchOptions, WatchSelector } from './run-store.js';

export interface NatsRunStoreOptions extends NatsStoreConnectionOptions {
  /** KV bucket name; created (file storage) when missing. */
  bucket: string;
  /** Revisions kept per key. Default 1. */
  history?: number;
}

/** The run store on a NATS KV bucket; revisions are the bucket's stream sequence numbers. */
export async function createNatsRunStore(opts: NatsRunStoreOptions): Promise<RunStore> {
  const nc = await connectForStore(opts, 'mstar-run-store');
  try {
    const kv = await new Kvm(nc).create(opts.bucket, {
      history: opts.history ?? 1,
      storage: StorageType.File,
      timeout: opts.timeoutMs ?? 5000,
    });
    return new NatsRunStore(nc, kv);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

function isWrongLastSequence(err: unknown): err is JetStreamApiError {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/** The server says "wrong last sequence: N"; N is the key's current revision. */
function reportedRevision(err: JetStreamApiError): number | undefined {
  const m = /wrong last sequence: (\d+)/.exec(err.message);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

class NatsRunStore implements RunStore {
  private readonly watches = new Set<AsyncQueue<RunStoreChange>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
  ) {}

  async get(key: string): Promise<RunStoreEntry | undefined> {
    assertRunKey(key);
    const e = await this.kv.get(key);
    if (e === null || e.operation !== 'PUT') return undefined;
    return { key, value: e.value, revision: e.revision };
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    assertRunKey(key);
    return this.kv.put(key, value);
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    assertRunKey(key);
    try {
      return await this.kv.create(key, value);
    } catch (err) {
      if (isWrongLastSequence(err)) throw new KeyExistsError(key, { cause: err });
      throw err;
    }
  }

  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    assertRunKey(key);
    try {
      return await this.kv.update(key, value, expectedRevision);
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      // A deleted key reports its delete marker's revision; to callers it simply has no value.
      const current = await this.get(key);
      throw new RevisionConflictError(key, expectedRevision, current?.revision ?? (reportedRevision(err) === undefined ? undefined : 0), {
        cause: err,
      });
    }
  }

  async delete(key: string): Promise<void> {
    assertRunKey(key);
    if ((await this.get(key)) === undefined) return;
    await this.kv.delete(key);
  }

  async keys(prefix?: string): Promise<string[]> {
    if (prefix !== undefined) assertRunKey(prefix);
    const out: string[] = [];
    for await (const k of await this.kv.keys(prefix === undefined ? '>' : `${prefix}.>`)) out.push(k);
    return out.sort();
  }

  watch(selector: WatchSelector, opts: WatchOptions = {}): AsyncIterable<RunStoreChange> {
    const key = 'key' in selector ? selector.key : selector.prefix;
    assertRunKey(key);
    const filter = 'key' in selector ? key : `${key}.>`;
    let stopSource: (() => void) | undefined;
    let ended = false;
    const queue = new AsyncQueue<RunStoreChange>(() => {
      ended = true;
      this.watches.delete(queue);
      detach();
      stopSource?.();
    });
    this.watches.add(queue);
    const detach = endOnAbort(queue, opts.signal);
    void (async () => {
      // Keys this watch has reported a value for: the initial snapshot includes delete markers of
      // long-deleted keys, which the caller never saw and must not hear about.
      const present = new Set<string>();
      try {
        const source = await this.kv.watch({ key: filter, include: KvWatchInclude.LastValue });
        stopSource = () => source.stop();
        if (ended) source.stop();
        for await (const e of source) {
          if (e.operation === 'PUT') {
            present.add(e.key);
            queue.push({ key: e.key, operation: 'put', value: e.value, revision: e.revision });
          } else if (present.delete(e.key)) {
            queue.push({ key: e.key, operation: 'delete', value: undefined, revision: e.revision });
          }
        }
        queue.end();
      } catch (err) {
        queue.fail(err instanceof Error ? err : new Error(`watch of '${filter}' failed: ${String(err)}`));
      }
    })();
    return queue;
  }

  async close(): Promise<void> {
    for (const q of [...this.watches]) q.end();
    await this.nc.close();
  }
}
