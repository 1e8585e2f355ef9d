import { describe, expect, it } from 'vitest';
import { createInProcessBus } from '../src/index.js';
import { DedupeWindow } from '../src/dedupe.js';
import { runBusContract } from './bus-contract.js';

runBusContract(
  'in-process',
  (prefix) => Promise.resolve(createInProcessBus({ subjects: [`${prefix}.>`], deadLetterPrefix: `${prefix}-dlq` })),
  { crashRedeliveryMs: 0 },
);

describe('DedupeWindow', () => {
  it('forgets ids older than the window', () => {
    let now = 1000;
    const w = new DedupeWindow(100, 10, () => now);
    w.remember('a', 1);
    now += 50;
    w.remember('b', 2);
    expect(w.lookup('a')).toBe(1);
    now += 60; // a is 110 ms old, b 60 ms
    expect(w.lookup('a')).toBeUndefined();
    expect(w.lookup('b')).toBe(2);
    expect(w.size).toBe(1);
  });

  it('never holds more than maxEntries ids, dropping the oldest first', () => {
    const w = new DedupeWindow(60_000, 3, () => 0);
    for (let i = 1; i <= 5; i++) w.remember(`id${i}`, i);
    expect(w.size).toBe(3);
    expect(w.lookup('id2')).toBeUndefined();
    expect(w.lookup('id3')).toBe(3);
    expect(w.lookup('id5')).toBe(5);
  });
});

describe('in-process bus specifics', () => {
  it('keeps a durable cursor while the bus lives: a later consumer resumes after the acked events', async () => {
    const bus = createInProcessBus();
    const enc = new TextEncoder();
    const first: string[] = [];
    const c1 = await bus.consume({
      durable: 'd',
      subjects: 'x.>',
      decode: (b) => new TextDecoder().decode(b),
      handler: (s) => {
        first.push(s);
        return Promise.resolve();
      },
    });
    await bus.publish('x.1', enc.encode('one'), { msgId: '1' });
    await expect.poll(() => c1.stats().acked).toBe(1);
    await c1.close();
    await bus.publish('x.2', enc.encode('two'), { msgId: '2' });
    const second: string[] = [];
    const c2 = await bus.consume({
      durable: 'd',
      subjects: 'x.>',
      decode: (b) => new TextDecoder().decode(b),
      handler: (s) => {
        second.push(s);
        return Promise.resolve();
      },
    });
    await expect.poll(() => c2.stats().acked).toBe(1);
    expect([first, second]).toEqual([['one'], ['two']]);
    await bus.close();
  });

  it('starts a durable over when asked for with other filters mid-delivery: the delivery in flight settles nothing', async () => {
    const bus = createInProcessBus();
    const enc = new TextEncoder();
    await bus.publish('x.b', enc.encode('b1'), { msgId: 'b1' });
    await bus.publish('x.a', enc.encode('a1'), { msgId: 'a1' });
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const consumer = (subjects: string) =>
      bus.consume({
        durable: 'switch',
        subjects,
        decode: (b) => new TextDecoder().decode(b),
        handler: async (s) => {
          seen.push(s);
          if (s === 'a1') await stuck;
        },
      });
    const onA = await consumer('x.a');
    await expect.poll(() => seen).toEqual(['a1']);
    const onB = await consumer('x.b');
    release();
    // Had a1's ack moved the restarted cursor past it, b1 (before a1 in the log) would be lost.
    await expect.poll(() => seen).toEqual(['a1', 'b1']);
    await bus.publish('x.a', enc.encode('a2'), { msgId: 'a2' });
    await bus.publish('x.b', enc.encode('b2'), { msgId: 'b2' });
    await expect.poll(() => seen).toEqual(['a1', 'b1', 'b2']);
    expect(onA.stats().acked + onB.stats().acked).toBe(3);
    await bus.close();
  });

  it('accepts several subject filters on one consumer', async () => {
    const bus = createInProcessBus();
    const got: string[] = [];
    const c = await bus.consume({
      durable: 'multi',
      subjects: ['a.*', 'b.>'],
      decode: (b) => new TextDecoder().decode(b),
      handler: (s) => {
        got.push(s);
        return Promise.resolve();
      },
    });
    for (const s of ['a.1', 'c.1', 'b.1.2', 'a.1.2']) await bus.publish(s, new TextEncoder().encode(s), { msgId: s });
    await expect.poll(() => c.stats().acked).toBe(2);
    expect(got).toEqual(['a.1', 'b.1.2']);
    await bus.close();
  });

  it('copies payloads so a publisher reusing its buffer cannot change stored events', async () => {
    const bus = createInProcessBus();
    const buf = new Uint8Array([1, 2, 3]);
    await bus.publish('x.1', buf, { msgId: '1' });
    buf[0] = 9;
    const got: number[][] = [];
    const c = await bus.consume({
      durable: 'copy',
      subjects: 'x.*',
      decode: (b) => [...b],
      handler: (v) => {
        got.push(v);
        return Promise.resolve();
      },
    });
    await expect.poll(() => c.stats().acked).toBe(1);
    expect(got).toEqual([[1, 2, 3]]);
    await bus.close();
  });
});
