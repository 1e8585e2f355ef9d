import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { CheckpointError, CheckpointNotFoundError } from './errors.js';

/**
 * Where a checkpoint lives: paths are relative and `/`-separated ('onnx/decoder_model_merged.onnx').
 * `read` of a missing file throws `CheckpointNotFoundError`.
 */
export interface CheckpointIO {
  read(path: string): Promise<Uint8Array>;
  write(path: string, bytes: Uint8Array): Promise<void>;
  exists(path: string): Promise<boolean>;
}

function checkPath(path: string): string {
  const n = normalize(path);
  if (path === '' || isAbsolute(path) || n.startsWith('..') || n.split(sep).includes('..')) {
    throw new CheckpointError(path, 'paths must be relative and stay inside the checkpoint');
  }
  return n;
}

/** A checkpoint in a directory; writes go to a temporary file renamed into place (readers never see half a file). */
export function fsCheckpointIO(dir: string): CheckpointIO {
  return {
    async read(path) {
      try {
        return new Uint8Array(await readFile(join(dir, checkPath(path))));
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new CheckpointNotFoundError(path, { cause });
        throw new CheckpointError(path, 'cannot be read', { cause });
      }
    },
    async write(path, bytes) {
      const full = join(dir, checkPath(path));
      await mkdir(dirname(full), { recursive: true });
      const tmp = `${full}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      await writeFile(tmp, bytes);
      await rename(tmp, full);
    },
    async exists(path) {
      try {
        await access(join(dir, checkPath(path)));
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** The part of @mstar/stores' ArtifactStore a checkpoint needs (structural, so no dependency). */
export interface ArtifactStoreLike {
  get(key: string): Promise<Uint8Array>;
  put(key: string, data: Uint8Array): Promise<unknown>;
  exists(key: string): Promise<boolean>;
}

/** A checkpoint stored under `prefix` (e.g. 'runs/r1/policy/v3') in an artifact store. */
export function storeCheckpointIO(store: ArtifactStoreLike, prefix: string): CheckpointIO {
  const key = (path: string): string => `${prefix.replace(/\/+$/, '')}/${checkPath(path).split(sep).join('/')}`;
  return {
    async read(path) {
      if (!(await store.exists(key(path)))) throw new CheckpointNotFoundError(path);
      return store.get(key(path));
    },
    async write(path, bytes) {
      await store.put(key(path), bytes);
    },
    exists: (path) => store.exists(key(path)),
  };
}

/** The same checkpoint IO seen from a sub-folder. */
export function subfolderIO(io: CheckpointIO, folder: string): CheckpointIO {
  const at = (path: string): string => `${folder}/${path}`;
  return {
    read: (path) => io.read(at(path)),
    write: (path, bytes) => io.write(at(path), bytes),
    exists: (path) => io.exists(at(path)),
  };
}
