import { StorageType } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { chunksOf, JsonArtifactHelpers, type ArtifactData, type ArtifactInfo, type ArtifactStore } from './artifact-store.js';
import { ArtifactNotFoundError } from './errors.js';
import { assertArtifactKey, assertArtifactPrefix } from './keys.js';
import { connectForStore, type NatsStoreConnectionOptions } from './nats-connection.js';

export interface NatsArtifactStoreOptions extends NatsStoreConnectionOptions {
  /** Object store bucket; created (file storage) when missing. */
  bucket: string;
}

/**
 * Artifacts in a NATS object store bucket. An object's chunks are written first and its metadata
 * last, so a reader sees the previous version until the new one is complete; reads verify the
 * SHA-256 digest.
 */
export async function createNatsArtifactStore(opts: NatsArtifactStoreOptions): Promise<ArtifactStore> {
  const nc = await connectForStore(opts, 'mstar-artifact-store');
  try {
    const os = await new Objm(nc).create(opts.bucket, { storage: StorageType.File });
    return new NatsArtifactStore(nc, os);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

function toReadableStream(data: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = data[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await it.next();
      if (r.done === true) controller.close();
      else controller.enqueue(r.value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

class NatsArtifactStore extends JsonArtifactHelpers implements ArtifactStore {
  constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
  ) {
    super();
  }

  async put(key: string, data: ArtifactData): Promise<ArtifactInfo> {
    assertArtifactKey(key);
    const info =
      data instanceof Uint8Array
        ? await this.os.putBlob({ name: key }, data)
        : await this.os.put({ name: key }, toReadableStream(chunksOf(data)));
    return { key, size: info.size };
  }

  async get(key: string): Promise<Uint8Array> {
    assertArtifactKey(key);
    const data = await this.os.getBlob(key);
    if (data === null) throw new ArtifactNotFoundError(key);
    return data;
  }

  async getStream(key: string): Promise<AsyncIterable<Uint8Array>> {
    assertArtifactKey(key);
    const result = await this.os.get(key);
    if (result === null) throw new ArtifactNotFoundError(key);
    return (async function* () {
      const reader = result.data.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
      // An Error when the digest of what was read does not match the stored one (null or undefined otherwise).
      const error = await result.error;
      if (error instanceof Error) throw error;
    })();
  }

  async exists(key: string): Promise<boolean> {
    assertArtifactKey(key);
    const info = await this.os.info(key);
    return info !== null && !info.deleted;
  }

  async list(prefix = ''): Promise<string[]> {
    assertArtifactPrefix(prefix);
    const infos = await this.os.list();
    return infos
      .filter((i) => !i.deleted && i.name.startsWith(prefix))
      .map((i) => i.name)
      .sort();
  }

  async delete(key: string): Promise<boolean> {
    if (!(await this.exists(key))) return false;
    await this.os.delete(key);
    return true;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
