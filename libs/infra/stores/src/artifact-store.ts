import { InvalidArgumentError } from '@mstar/errors';

export interface ArtifactInfo {
  key: string;
  /** Bytes stored. */
  size: number;
}

export type ArtifactData = Uint8Array | AsyncIterable<Uint8Array>;

/**
 * Checkpoints, datasets and reports, addressed by relative `/`-separated keys (see
 * `assertArtifactKey`). Writes are atomic: a reader sees the previous artifact or the new one,
 * never a part; concurrent writers to one key leave one of their artifacts whole.
 */
export interface ArtifactStore {
  put(key: string, data: ArtifactData): Promise<ArtifactInfo>;
  /** The whole artifact; `ArtifactNotFoundError` when there is none. */
  get(key: string): Promise<Uint8Array>;
  /** The artifact as chunks, for large ones; `ArtifactNotFoundError` (before any chunk) when there is none. */
  getStream(key: string): Promise<AsyncIterable<Uint8Array>>;
  exists(key: string): Promise<boolean>;
  /** Keys starting with `prefix` (a plain string prefix, default all), sorted. */
  list(prefix?: string): Promise<string[]>;
  /** Removes the artifact; true if there was one. */
  delete(key: string): Promise<boolean>;
  /** `put` of the value as UTF-8 JSON. */
  putJson(key: string, value: unknown): Promise<ArtifactInfo>;
  /** `get` parsed as JSON; a body that is not JSON is an `InvalidArgumentError` naming the key. */
  getJson<T>(key: string): Promise<T>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The JSON helpers, written once on top of each implementation's `put` and `get`. */
export abstract class JsonArtifactHelpers {
  abstract put(key: string, data: ArtifactData): Promise<ArtifactInfo>;
  abstract get(key: string): Promise<Uint8Array>;

  putJson(key: string, value: unknown): Promise<ArtifactInfo> {
    return this.put(key, encoder.encode(JSON.stringify(value)));
  }

  async getJson<T>(key: string): Promise<T> {
    const bytes = await this.get(key);
    try {
      return JSON.parse(decoder.decode(bytes)) as T;
    } catch (err) {
      throw new InvalidArgumentError(`artifact '${key}' is not valid JSON`, { cause: err, field: 'key' });
    }
  }
}

export async function* chunksOf(data: ArtifactData): AsyncIterable<Uint8Array> {
  if (data instanceof Uint8Array) yield data;
  else yield* data;
}
