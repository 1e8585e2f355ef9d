import { afterEach, describe, expect, it } from 'vitest';
import { InvalidKeyError, KeyExistsError, RevisionConflictError, type RunStore, type RunStoreChange } from '../src/index.js';

export type RunStoreFactory = () => Promise<RunStore>;

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : dec.decode(v));

/** Reads `n` changes from a watch, failing the test instead of hanging if they do not come. */
async function take(it: AsyncIterator<RunStoreChange>, n: number, timeoutMs = 5000): Promise<Array<[string, string, string | undefined]>> {
  const out: Array<[string, string, string | undefined]> = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())));
    const r = await Promise.race([it.next(), timer]);
    if (r === 'timeout') throw new Error(`watch produced ${out.length} of ${n} changes: ${JSON.stringify(out)}`);
    if (r.done === true) break;
    out.push([r.value.key, r.value.operation, text(r.value.value)]);
  }
  return out;
}

export function runRunStoreContract(name: string, factory: RunStoreFactory): void {
  describe(`RunStore contract: ${name}`, () => {
    const open: RunStore[] = [];
    async function store(): Promise<RunStore> {
      const s = await factory();
      open.push(s);
      return s;
    }
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('puts and gets values with increasing revisions; a missing key is undefined', async () => {
      const s = await store();
      expect(await s.get('runs.r1')).toBeUndefined();
      const r1 = await s.put('runs.r1', enc.encode('v1'));
      const r2 = await s.put('runs.r2', enc.encode('other'));
      const r3 = await s.put('runs.r1', enc.encode('v2'));
      expect(r2).toBeGreaterThan(r1);
      expect(r3).toBeGreaterThan(r2);
      const got = await s.get('runs.r1');
      expect(got).toMatchObject({ key: 'runs.r1', revision: r3 });
      expect(text(got?.value)).toBe('v2');
    });

    it('create refuses an existing key with KeyExistsError and works again after delete', async () => {
      const s = await store();
      const rev = await s.create('runs.c', enc.encode('first'));
      const err = await s.create('runs.c', enc.encode('second')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyExistsError);
      expect((err as KeyExistsError).key).toBe('runs.c');
      expect((err as Error).message).toBe("key 'runs.c' already exists");
      expect((await s.get('runs.c'))?.revision).toBe(rev);
      await s.delete('runs.c');
      expect(await s.get('runs.c')).toBeUndefined();
      await s.create('runs.c', enc.encode('again'));
      expect(text((await s.get('runs.c'))?.value)).toBe('again');
    });

    it('update succeeds only at the expected revision and reports the conflict otherwise', async () => {
      const s = await store();
      const r1 = await s.put('runs.u', enc.encode('a'));
      const r2 = await s.update('runs.u', enc.encode('b'), r1);
      expect(r2).toBeGreaterThan(r1);
      const err = await s.update('runs.u', enc.encode('stale'), r1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RevisionConflictError);
      expect(err).toMatchObject({ key: 'runs.u', expectedRevision: r1, actualRevision: r2 });
      expect((err as Error).message).toBe(`update of key 'runs.u' expected revision ${r1} (it is at revision ${r2})`);
      expect(text((await s.get('runs.u'))?.value)).toBe('b');

      const missing = await s.update('runs.none', enc.encode('x'), 3).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(RevisionConflictError);
      expect(missing).toMatchObject({ expectedRevision: 3, actualRevision: 0 });
    });

    it('lets exactly one of two racing updates from the same revision win; retry loops lose no increment', async () => {
      const s = await store();
      const base = await s.put('runs.race', enc.encode('0'));
      const results = await Promise.allSettled([
        s.update('runs.race', enc.encode('A'), base),
        s.update('runs.race', enc.encode('B'), base),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(RevisionConflictError);

      await s.put('runs.counter', enc.encode('0'));
      let conflicts = 0;
      const increment = async () => {
        for (;;) {
          const cur = await s.get('runs.counter');
          if (cur === undefined) throw new Error('counter vanished');
          try {
            await s.update('runs.counter', enc.encode(String(Number(text(cur.value)) + 1)), cur.revision);
            return;
          } catch (err) {
            if (!(err instanceof RevisionConflictError)) throw err;
            conflicts++;
          }
        }
      };
      await Promise.all(Array.from({ length: 10 }, increment));
      expect(text((await s.get('runs.counter'))?.value)).toBe('10');
      expect(conflicts).toBeGreaterThanOrEqual(0);
    });

    it('deletes values (a no-op for keys without one) and lists keys sorted, by token prefix', async () => {
      const s = await store();
      for (const k of ['runs.b.stage', 'runs.a', 'runsx.c', 'other', 'runs.z']) await s.put(k, enc.encode(k));
      expect(await s.keys()).toEqual(['other', 'runs.a', 'runs.b.stage', 'runs.z', 'runsx.c']);
      expect(await s.keys('runs')).toEqual(['runs.a', 'runs.b.stage', 'runs.z']);
      expect(await s.keys('runs.b')).toEqual(['runs.b.stage']);
      expect(await s.keys('nothing')).toEqual([]);
      await s.delete('runs.z');
      await s.delete('runs.never');
      expect(await s.keys('runs')).toEqual(['runs.a', 'runs.b.stage']);
      expect(await s.get('runs.z')).toBeUndefined();
    });

    it('watches one key: its current value, then each change, until aborted', async () => {
      const s = await store();
      await s.put('runs.w', enc.encode('v1'));
      await s.put('runs.w2', enc.encode('not me'));
      const ac = new AbortController();
      const it = s.watch({ key: 'runs.w' }, { signal: ac.signal })[Symbol.asyncIterator]();
      expect(await take(it, 1)).toEqual([['runs.w', 'put', 'v1']]);
      await s.put('runs.w2', enc.encode('still not me'));
      await s.put('runs.w', enc.encode('v2'));
      await s.delete('runs.w');
      await s.create('runs.w', enc.encode('v3'));
      expect(await take(it, 3)).toEqual([
        ['runs.w', 'put', 'v2'],
        ['runs.w', 'delete', undefined],
        ['runs.w', 'put', 'v3'],
      ]);
      ac.abort();
      expect((await it.next()).done).toBe(true);
    });

    it('watches a prefix: current values oldest first (deleted keys left out), then later changes below it', async () => {
      const s = await store();
      await s.put('runs.b', enc.encode('b1'));
      await s.put('runs.a', enc.encode('a1'));
      await s.put('runs.gone', enc.encode('x'));
      await s.delete('runs.gone');
      await s.put('runs', enc.encode('the prefix key itself is not below the prefix'));
      const changes: Array<[string, string, string | undefined]> = [];
      const done = (async () => {
        for await (const c of s.watch({ prefix: 'runs' })) {
          changes.push([c.key, c.operation, text(c.value)]);
          if (changes.length === 4) break;
        }
      })();
      await expect.poll(() => changes.length, { timeout: 5000 }).toBe(2);
      await s.put('elsewhere.x', enc.encode('no'));
      await s.put('runs.c.deep', enc.encode('c1'));
      await s.delete('runs.a');
      await done;
      expect(changes).toEqual([
        ['runs.b', 'put', 'b1'],
        ['runs.a', 'put', 'a1'],
        ['runs.c.deep', 'put', 'c1'],
        ['runs.a', 'delete', undefined],
      ]);
    });

    it('rejects malformed keys with InvalidKeyError before touching the store', async () => {
      const s = await store();
      for (const bad of ['', 'a..b', '.lead', 'trail.', 'has space', 'star.*', 'gt.>']) {
        await expect(s.put(bad, enc.encode('x'))).rejects.toBeInstanceOf(InvalidKeyError);
      }
      await expect(s.get('a b')).rejects.toThrow("invalid key 'a b': token 'a b' must be non-empty");
      await expect(s.keys('bad prefix')).rejects.toBeInstanceOf(InvalidKeyError);
      expect(() => s.watch({ prefix: 'x.*' })).toThrow(InvalidKeyError);
    });
  });
}
