import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '@mstar/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { ArtifactNotFoundError, InvalidKeyError, type ArtifactStore } from '../src/index.js';

export type ArtifactStoreFactory = () => Promise<ArtifactStore>;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deterministic pseudo-random bytes (xorshift), so big payloads are not trivially compressible. */
export function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function* chunked(data: Uint8Array, size: number, pauseMs = 0): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    yield data.subarray(i, i + size);
  }
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function runArtifactStoreContract(name: string, factory: ArtifactStoreFactory): void {
  describe(`ArtifactStore contract: ${name}`, () => {
    const open: ArtifactStore[] = [];
    async function store(): Promise<ArtifactStore> {
      const s = await factory();
      open.push(s);
      return s;
    }
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('stores bytes and chunk streams, overwrites, and reads back whole or streamed', async () => {
      const s = await store();
      expect(await s.put('runs/r1/config.json', enc.encode('{"a":1}'))).toEqual({ key: 'runs/r1/config.json', size: 7 });
      expect(dec.decode(await s.get('runs/r1/config.json'))).toBe('{"a":1}');
      expect(await s.exists('runs/r1/config.json')).toBe(true);

      const payload = bytes(300_000, 7);
      expect(await s.put('runs/r1/weights.bin', chunked(payload, 64 * 1024))).toEqual({ key: 'runs/r1/weights.bin', size: 300_000 });
      expect(sha(await s.get('runs/r1/weights.bin'))).toBe(sha(payload));
      const parts: Uint8Array[] = [];
      for await (const c of await s.getStream('runs/r1/weights.bin')) parts.push(c);
      expect(sha(Buffer.concat(parts))).toBe(sha(payload));

      await s.put('runs/r1/config.json', enc.encode('{"a":2}'));
      expect(await s.getJson('runs/r1/config.json')).toEqual({ a: 2 });
      expect(await s.put('empty.bin', new Uint8Array(0))).toEqual({ key: 'empty.bin', size: 0 });
      expect((await s.get('empty.bin')).length).toBe(0);
    });

    it('reports a missing artifact with ArtifactNotFoundError naming the key', async () => {
      const s = await store();
      for (const op of [() => s.get('no/such.bin'), () => s.getStream('no/such.bin'), () => s.getJson('no/such.bin')]) {
        const err = await op().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ArtifactNotFoundError);
        expect((err as ArtifactNotFoundError).key).toBe('no/such.bin');
        expect((err as Error).message).toBe("artifact 'no/such.bin' not found");
      }
      expect(await s.exists('no/such.bin')).toBe(false);
      await s.put('no/other.bin', enc.encode('x'));
      expect(await s.exists('no')).toBe(false);
      await expect(s.get('no')).rejects.toBeInstanceOf(ArtifactNotFoundError);
    });

    it('lists keys by string prefix, sorted, and deletes', async () => {
      const s = await store();
      for (const k of ['b/2.txt', 'a/x/1.txt', 'a/10.txt', 'a/2.txt', 'ab.txt']) await s.put(k, enc.encode(k));
      expect(await s.list()).toEqual(['a/10.txt', 'a/2.txt', 'a/x/1.txt', 'ab.txt', 'b/2.txt']);
      expect(await s.list('a/')).toEqual(['a/10.txt', 'a/2.txt', 'a/x/1.txt']);
      expect(await s.list('a')).toEqual(['a/10.txt', 'a/2.txt', 'a/x/1.txt', 'ab.txt']);
      expect(await s.list('a/x/')).toEqual(['a/x/1.txt']);
      expect(await s.list('a/1')).toEqual(['a/10.txt']);
      expect(await s.list('zzz/')).toEqual([]);

      expect(await s.delete('a/2.txt')).toBe(true);
      expect(await s.delete('a/2.txt')).toBe(false);
      expect(await s.exists('a/2.txt')).toBe(false);
      await expect(s.get('a/2.txt')).rejects.toBeInstanceOf(ArtifactNotFoundError);
      expect(await s.list('a/')).toEqual(['a/10.txt', 'a/x/1.txt']);
    });

    it('stores JSON and refuses to parse a non-JSON artifact as JSON', async () => {
      const s = await store();
      const value = { version: 3, steps: [1.5, 'two'], nested: { ok: true } };
      await s.putJson('datasets/d1/meta.json', value);
      expect(await s.getJson<typeof value>('datasets/d1/meta.json')).toEqual(value);
      await s.put('datasets/d1/raw.bin', new Uint8Array([0xff, 0x00, 0x7b]));
      const err = await s.getJson('datasets/d1/raw.bin').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toBe("artifact 'datasets/d1/raw.bin' is not valid JSON");
    });

    it('rejects keys that are absolute, escape the store or are malformed, with InvalidKeyError', async () => {
      const s = await store();
      const cases: Array<[string, RegExp]> = [
        ['../outside', /'\.\.' segments are not allowed/],
        ['a/../../outside', /'\.\.' segments are not allowed/],
        ['/etc/passwd', /absolute paths are not allowed/],
        ['a//b', /empty path segment/],
        ['a/b/', /empty path segment/],
        ['a/./b', /'\.' segments are not allowed/],
        ['.hidden', /must not start with '\.'/],
        ['a\\b', /may use only letters/],
        ['', /cannot be empty/],
      ];
      for (const [key, why] of cases) {
        for (const op of [() => s.put(key, enc.encode('x')), () => s.get(key), () => s.exists(key), () => s.delete(key)]) {
          const err = await op().catch((e: unknown) => e);
          expect(err, key).toBeInstanceOf(InvalidKeyError);
          expect((err as Error).message, key).toMatch(why);
        }
      }
      await expect(s.list('../')).rejects.toBeInstanceOf(InvalidKeyError);
    });

    it('round-trips a 20 MB artifact, whole and streamed', async () => {
      const s = await store();
      const big = bytes(20 * 1024 * 1024, 42);
      const info = await s.put('checkpoints/policy-v1/model.onnx', chunked(big, 1024 * 1024));
      expect(info.size).toBe(big.length);
      const back = await s.get('checkpoints/policy-v1/model.onnx');
      expect(back.length).toBe(big.length);
      expect(sha(back)).toBe(sha(big));
      const h = createHash('sha256');
      let total = 0;
      for await (const c of await s.getStream('checkpoints/policy-v1/model.onnx')) {
        h.update(c);
        total += c.length;
      }
      expect(total).toBe(big.length);
      expect(h.digest('hex')).toBe(sha(big));
    }, 60_000);

    it('keeps concurrent writers to different keys apart', async () => {
      const s = await store();
      const payloads = Array.from({ length: 8 }, (_, i) => bytes(200_000 + i * 1000, i + 1));
      await Promise.all(payloads.map((p, i) => s.put(`concurrent/w${i}.bin`, chunked(p, 32 * 1024))));
      for (const [i, p] of payloads.entries()) expect(sha(await s.get(`concurrent/w${i}.bin`))).toBe(sha(p));
      expect(await s.list('concurrent/')).toEqual(payloads.map((_, i) => `concurrent/w${i}.bin`));
    });

    it('never shows a half-written artifact: readers see nothing or the old version until the write completes', async () => {
      const s = await store();
      const v1 = bytes(256 * 1024, 1);
      const v2 = bytes(256 * 1024, 2);
      let chunksWritten = 0;
      async function* slow(data: Uint8Array): AsyncIterable<Uint8Array> {
        for await (const c of chunked(data, 32 * 1024, 15)) {
          chunksWritten++;
          yield c;
        }
      }
      const first = s.put('atomic/a.bin', slow(v1));
      await expect.poll(() => chunksWritten, { timeout: 5000 }).toBeGreaterThan(2);
      expect(await s.exists('atomic/a.bin')).toBe(false);
      await expect(s.get('atomic/a.bin')).rejects.toBeInstanceOf(ArtifactNotFoundError);
      expect(await s.list('atomic/')).toEqual([]);
      await first;

      chunksWritten = 0;
      const second = s.put('atomic/a.bin', slow(v2));
      await expect.poll(() => chunksWritten, { timeout: 5000 }).toBeGreaterThan(2);
      expect(sha(await s.get('atomic/a.bin'))).toBe(sha(v1));
      await second;
      expect(sha(await s.get('atomic/a.bin'))).toBe(sha(v2));
    });
  });
}
