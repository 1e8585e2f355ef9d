import { CancelledError, ResourceExhaustedError, UnavailableError } from '@mstar/errors';
import { expect, test } from 'vitest';
import { createBatcher } from '../src/batcher.js';
import { gate } from './gate.js';

/** A batcher over numbers whose batches double their items; batches are recorded and can be held. */
function doubling(options: { maxBatch: number; concurrency?: number; maxQueue?: number; fail?: (items: readonly number[]) => boolean }) {
  const batches: { items: number[]; requests: number }[] = [];
  let held: Promise<void> | undefined;
  let active = 0;
  let maxActive = 0;
  const batcher = createBatcher<number, number>({
    maxQueue: options.maxQueue ?? 16,
    maxBatch: options.maxBatch,
    concurrency: options.concurrency ?? 1,
    async runBatch(items, requests) {
      batches.push({ items: [...items], requests });
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        await held;
        if (options.fail?.(items) === true) throw new Error('graph failed');
        return items.map((x) => 2 * x);
      } finally {
        active--;
      }
    },
  });
  return {
    batcher,
    batches,
    maxActive: () => maxActive,
    hold() {
      const g = gate();
      held = g.promise;
      return () => {
        held = undefined;
        g.open();
      };
    },
  };
}

const live = (): AbortSignal => new AbortController().signal;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('splits a request over batches of at most maxBatch and returns its outputs in order', async () => {
  const { batcher, batches } = doubling({ maxBatch: 4 });
  expect(await batcher.submit('v0', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], live())).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  expect(batches.map((b) => b.items)).toEqual([
    [1, 2, 3, 4],
    [5, 6, 7, 8],
    [9, 10],
  ]);
  expect(await batcher.submit('v0', [], live())).toEqual([]);
});

test('waiting requests with the same key share batches in arrival order; other keys never join', async () => {
  const t = doubling({ maxBatch: 4 });
  const release = t.hold();
  const first = t.batcher.submit('v0', [100], live());
  const a = t.batcher.submit('v0', [1, 2, 3], live());
  const other = t.batcher.submit('v1', [7], live());
  const b = t.batcher.submit('v0', [4, 5], live());
  expect(t.batcher.depth()).toBe(3);
  release();
  expect(await Promise.all([first, a, b, other])).toEqual([[200], [2, 4, 6], [8, 10], [14]]);
  expect(t.batches).toEqual([
    { items: [100], requests: 1 },
    { items: [1, 2, 3, 4], requests: 2 },
    // The oldest waiting request goes next: v1 arrived before the rest of B.
    { items: [7], requests: 1 },
    { items: [5], requests: 1 },
  ]);
});

test('one request spreads over every worker slot', async () => {
  const t = doubling({ maxBatch: 2, concurrency: 3 });
  const release = t.hold();
  const out = t.batcher.submit('v0', [1, 2, 3, 4, 5, 6, 7], live());
  await tick();
  expect(t.maxActive()).toBe(3);
  release();
  expect(await out).toEqual([2, 4, 6, 8, 10, 12, 14]);
  expect(t.batches.map((b) => b.items.length)).toEqual([2, 2, 2, 1]);
});

test('a full queue refuses with RESOURCE_EXHAUSTED; a cancelled waiting request leaves it at once', async () => {
  const t = doubling({ maxBatch: 4, maxQueue: 2 });
  const release = t.hold();
  const running = t.batcher.submit('v0', [1], live());
  const controller = new AbortController();
  const cancelled = t.batcher.submit('v0', [2], controller.signal);
  const waiting = t.batcher.submit('v0', [3], live());
  await expect(t.batcher.submit('v0', [4], live())).rejects.toThrow(ResourceExhaustedError);
  controller.abort();
  await expect(cancelled).rejects.toThrow(CancelledError);
  expect(t.batcher.depth()).toBe(1);
  release();
  expect(await Promise.all([running, waiting])).toEqual([[2], [6]]);
  expect(t.batches.map((b) => b.items)).toEqual([[1], [3]]);
  const aborted = new AbortController();
  aborted.abort(new Error('gone'));
  await expect(t.batcher.submit('v0', [5], aborted.signal)).rejects.toThrow('gone');
});

test('a cancelled or failed request settles only after its running batches are done', async () => {
  const t = doubling({ maxBatch: 2, fail: (items) => items.includes(13) });
  const release = t.hold();
  const controller = new AbortController();
  let settled = false;
  const cancelled = t.batcher.submit('v0', [1, 2, 3, 4], controller.signal).finally(() => (settled = true));
  cancelled.catch(() => undefined);
  await tick();
  controller.abort();
  await tick();
  // Its first batch still runs (holding, say, a leased model version): not settled yet.
  expect(settled).toBe(false);
  release();
  await expect(cancelled).rejects.toThrow(CancelledError);
  // Its second batch never ran.
  expect(t.batches.map((b) => b.items)).toEqual([[1, 2]]);

  // A failing batch fails every request in it, and the rest of those requests is dropped.
  const failing = t.batcher.submit('v0', [13, 14, 15, 16], live());
  await expect(failing).rejects.toThrow('graph failed');
  expect(t.batches.at(-1)?.items).toEqual([13, 14]);
  expect(await t.batcher.submit('v0', [20], live())).toEqual([40]);
});

test('close fails the waiting requests with UNAVAILABLE, lets running batches finish, then refuses', async () => {
  const t = doubling({ maxBatch: 1 });
  const release = t.hold();
  const running = t.batcher.submit('v0', [1], live());
  const waiting = t.batcher.submit('v0', [2], live());
  waiting.catch(() => undefined);
  const closing = t.batcher.close();
  await expect(waiting).rejects.toThrow(UnavailableError);
  release();
  await closing;
  expect(await running).toEqual([2]);
  await expect(t.batcher.submit('v0', [3], live())).rejects.toThrow(UnavailableError);
});
