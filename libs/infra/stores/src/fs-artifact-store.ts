import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { ArtifactNotFoundError, InvalidKeyError } from './errors.js';
import { chunksOf, JsonArtifactHelpers, type ArtifactData, type ArtifactInfo, type ArtifactStore } from './artifact-store.js';
import { assertArtifactKey, assertArtifactPrefix } from './keys.js';

/**
 * Writes go to `<root>/.tmp/` and are renamed into place: rename within one filesystem is atomic,
 * and keys cannot name dot-segments, so temp files never show up as artifacts.
 */
const TMP_DIR = '.tmp';

export interface FsArtifactStoreOptions {
  /** Directory holding the artifacts (created if missing). */
  root: string;
}

export async function createFsArtifactStore(opts: FsArtifactStoreOptions): Promise<ArtifactStore> {
  const root = resolve(opts.root);
  await mkdir(join(root, TMP_DIR), { recursive: true });
  return new FsArtifactStore(root);
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

class FsArtifactStore extends JsonArtifactHelpers implements ArtifactStore {
  constructor(private readonly root: string) {
    super();
  }

  private path(key: string): string {
    assertArtifactKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, data: ArtifactData): Promise<ArtifactInfo> {
    const target = this.path(key);
    const tmp = join(this.root, TMP_DIR, randomUUID());
    let size = 0;
    const fh = await open(tmp, 'w');
    try {
      for await (const chunk of chunksOf(data)) {
        await fh.write(chunk);
        size += chunk.byteLength;
      }
      // Without this a crash after the rename could leave a renamed but empty file.
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      await mkdir(join(target, '..'), { recursive: true });
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      // A directory tree cannot hold both 'a' and 'a/b'; the object store could, but keys like
      // that are a mistake in either.
      if (isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EEXIST') || isErrno(err, 'ENOTEMPTY')) {
        throw new InvalidKeyError(key, 'it collides with existing artifacts (a key cannot also be a folder of keys)', { cause: err });
      }
      throw err;
    }
    return { key, size };
  }

  async get(key: string): Promise<Uint8Array> {
    const path = this.path(key);
    try {
      const buf = await readFile(path);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR')) throw new ArtifactNotFoundError(key, { cause: err });
      throw err;
    }
  }

  async getStream(key: string): Promise<AsyncIterable<Uint8Array>> {
    const path = this.path(key);
    try {
      // The open handle pins this version: a concurrent put renames a new file over the name.
      const fh = await open(path, 'r');
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw new ArtifactNotFoundError(key);
      }
      return fh.createReadStream({ highWaterMark: 1 << 20 });
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new ArtifactNotFoundError(key, { cause: err });
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    const path = this.path(key);
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  async list(prefix = ''): Promise<string[]> {
    assertArtifactPrefix(prefix);
    // Walk only the directory the prefix is inside of.
    const dir = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const keys: string[] = [];
    try {
      const entries = await readdir(join(this.root, ...dir.split('/').filter(Boolean)), { recursive: true, withFileTypes: true });
      for (const e of entries) {
        if (!e.isFile()) continue;
        const rel = relative(this.root, join(e.parentPath, e.name)).split(sep).join('/');
        if (rel.split('/').some((s) => s.startsWith('.'))) continue;
        if (rel.startsWith(prefix)) keys.push(rel);
      }
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
      throw err;
    }
    return keys.sort();
  }

  async delete(key: string): Promise<boolean> {
    const path = this.path(key);
    try {
      if (!(await stat(path)).isFile()) return false;
      await unlink(path);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
