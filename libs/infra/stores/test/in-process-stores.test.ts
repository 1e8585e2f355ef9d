import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFsArtifactStore, createInMemoryRunStore, InvalidKeyError } from '../src/index.js';
import { runArtifactStoreContract } from './artifact-store-contract.js';
import { runRunStoreContract } from './run-store-contract.js';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mstar-artifacts-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

runRunStoreContract('in-memory', () => Promise.resolve(createInMemoryRunStore()));
runArtifactStoreContract('filesystem', async () => createFsArtifactStore({ root: await freshDir() }));

describe('filesystem artifact store specifics', () => {
  it('lays artifacts out as plain files under the root and leaves no temp files behind', async () => {
    const root = await freshDir();
    const s = await createFsArtifactStore({ root });
    await s.put('runs/r1/a.txt', new TextEncoder().encode('hello'));
    await s.put('runs/r1/a.txt', new TextEncoder().encode('hello again'));
    expect(await readdir(join(root, 'runs', 'r1'))).toEqual(['a.txt']);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    // A second store on the same directory sees the same artifacts (e.g. another service on the volume).
    const other = await createFsArtifactStore({ root });
    expect(new TextDecoder().decode(await other.get('runs/r1/a.txt'))).toBe('hello again');
  });

  it('removes the temp file when the source stream fails mid-write', async () => {
    const root = await freshDir();
    const s = await createFsArtifactStore({ root });
    async function* failing(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(10);
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('source broke');
    }
    await expect(s.put('x/y.bin', failing())).rejects.toThrow('source broke');
    expect(await s.exists('x/y.bin')).toBe(false);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('refuses a key that collides with a folder of keys', async () => {
    const s = await createFsArtifactStore({ root: await freshDir() });
    await s.put('a/b.txt', new Uint8Array(1));
    await expect(s.put('a', new Uint8Array(1))).rejects.toThrow(InvalidKeyError);
    await expect(s.put('a/b.txt/c', new Uint8Array(1))).rejects.toThrow(/collides with existing artifacts/);
  });
});
