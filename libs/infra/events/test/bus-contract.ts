import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  EventBusClosedError,
  InvalidSubjectError,
  parseDeadLetter,
  type Consumer,
  type ConsumerOptions,
  type EventBus,
  type EventMeta,
  type Rejection,
} from '../src/index.js';

/**
 * Creates a bus whose stream stores `<prefix>.>` and whose dead letters go to `<prefix>-dlq.<durable>`.
 * Buses are created fresh per test with a unique prefix, so tests never see each other's events.
 */
export type BusFactory = (prefix: string) => Promise<EventBus>;

export interface ContractTiming {
  /** How long a crashed consumer's event takes to come back (JetStream: ack-wait). */
  crashRedeliveryMs: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
export const parseJson = (b: Uint8Array): unknown => JSON.parse(dec.decode(b));

interface Seen {
  subject: string;
  body: unknown;
  meta: EventMeta;
}

let counter = 0;
export function uniquePrefix(): string {
  return `t${process.pid}x${Date.now().toString(36)}x${counter++}`;
}

/** Handler that records what it saw; `fail(meta)` may throw to make the delivery fail. */
export function recorder(fail?: (body: unknown, meta: EventMeta) => void) {
  const seen: Seen[] = [];
  return {
    seen,
    bodies: () => seen.map((s) => s.body),
    handler: (body: unknown, meta: EventMeta) => {
      seen.push({ subject: meta.subject, body, meta });
      fail?.(body, meta);
      return Promise.resolve();
    },
  };
}

export function runBusContract(name: string, factory: BusFactory, timing: ContractTiming): void {
  describe(`EventBus contract: ${name}`, () => {
    const buses: EventBus[] = [];
    const consumers: Consumer[] = [];
    let prefix = '';

    async function newBus(): Promise<EventBus> {
      prefix = uniquePrefix();
      const bus = await factory(prefix);
      buses.push(bus);
      return bus;
    }

    async function consume<T>(bus: EventBus, opts: ConsumerOptions<T>): Promise<Consumer> {
      const c = await bus.consume(opts);
      consumers.push(c);
      return c;
    }

    const jsonConsumer = (durable: string, handler: (b: unknown, m: EventMeta) => Promise<void>, extra: Partial<ConsumerOptions<unknown>> = {}) => ({
      durable,
      subjects: `${prefix}.>`,
      decode: parseJson,
      handler,
      backoffMs: [20],
      ...extra,
    });

    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.close({ graceful: false })));
      await Promise.all(buses.splice(0).map((b) => b.close()));
    });

    it('delivers every published event once it is stored, with its metadata, then acks it', async () => {
      const bus = await newBus();
      const r1 = await bus.publish(`${prefix}.run.a`, json({ n: 1 }), { msgId: 'm1', headers: { 'Run-Id': 'r-1' } });
      const r2 = await bus.publish(`${prefix}.run.b`, json({ n: 2 }), { msgId: 'm2' });
      expect(r1.duplicate).toBe(false);
      expect(r2.sequence).toBeGreaterThan(r1.sequence);

      const rec = recorder();
      const c = await consume(bus, jsonConsumer('all', rec.handler));
      await bus.publish(`${prefix}.run.a`, json({ n: 3 }), { msgId: 'm3' });
      await vi.waitFor(() => expect(c.stats().acked).toBe(3), { timeout: 5000 });

      expect(rec.bodies()).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      const first = rec.seen[0]?.meta;
      expect(first).toMatchObject({
        subject: `${prefix}.run.a`,
        sequence: r1.sequence,
        msgId: 'm1',
        deliveryCount: 1,
        redelivered: false,
        durable: 'all',
      });
      expect(first?.headers['Run-Id']).toBe('r-1');
      expect(first?.publishedAt).toBeInstanceOf(Date);
      expect(c.stats()).toEqual({ delivered: 3, acked: 3, redelivered: 0, handlerErrors: 0, deadLettered: 0, rejectedUndecodable: 0 });
    });

    it('de-duplicates publishes by msgId', async () => {
      const bus = await newBus();
      const a = await bus.publish(`${prefix}.x`, json('first'), { msgId: 'same' });
      const b = await bus.publish(`${prefix}.x`, json('second'), { msgId: 'same' });
      const c2 = await bus.publish(`${prefix}.x`, json('first'), { msgId: 'other' });
      expect(a).toEqual({ duplicate: false, sequence: a.sequence });
      expect(b).toEqual({ duplicate: true, sequence: a.sequence });
      expect(c2.duplicate).toBe(false);

      const rec = recorder();
      const c = await consume(bus, jsonConsumer('dedupe', rec.handler));
      await vi.waitFor(() => expect(c.stats().acked).toBe(2), { timeout: 5000 });
      expect(rec.bodies()).toEqual(['first', 'first']);
      expect(rec.seen.map((s) => s.meta.msgId)).toEqual(['same', 'other']);
    });

    it('hands each durable its own copy of every event (fan-out)', async () => {
      const bus = await newBus();
      const r1 = recorder();
      const r2 = recorder();
      const c1 = await consume(bus, jsonConsumer('fan1', r1.handler));
      const c2 = await consume(bus, jsonConsumer('fan2', r2.handler, { subjects: `${prefix}.only.*` }));
      await bus.publish(`${prefix}.only.a`, json(1), { msgId: '1' });
      await bus.publish(`${prefix}.other`, json(2), { msgId: '2' });
      await bus.publish(`${prefix}.only.b`, json(3), { msgId: '3' });
      await vi.waitFor(() => expect(c1.stats().acked).toBe(3), { timeout: 5000 });
      await vi.waitFor(() => expect(c2.stats().acked).toBe(2), { timeout: 5000 });
      expect(r1.bodies()).toEqual([1, 2, 3]);
      expect(r2.bodies()).toEqual([1, 3]);
    });

    it('handles events one at a time in stream order, each acked before the next, even across a retry', async () => {
      const bus = await newBus();
      let active = 0;
      let maxActive = 0;
      const order: string[] = [];
      const failedOnce = new Set<string>();
      const c = await consume(bus, {
        durable: 'ordered',
        subjects: `${prefix}.>`,
        decode: (b) => dec.decode(b),
        backoffMs: [30],
        handler: async (body, meta) => {
          active++;
          maxActive = Math.max(maxActive, active);
          order.push(`${body}#${meta.deliveryCount}`);
          await new Promise((r) => setTimeout(r, (body.length * 7) % 5));
          active--;
          if (body === 'a2' && !failedOnce.has(body)) {
            failedOnce.add(body);
            throw new Error('transient');
          }
        },
      });
      const expected: string[] = [];
      for (let i = 0; i < 6; i++) {
        for (const s of ['a', 'b']) {
          const body = `${s}${i}`;
          expected.push(body);
          await bus.publish(`${prefix}.${s}`, enc.encode(body), { msgId: body });
        }
      }
      await vi.waitFor(() => expect(c.stats().acked).toBe(12), { timeout: 5000 });
      expect(maxActive).toBe(1);
      const withRetry = expected.flatMap((b) => (b === 'a2' ? ['a2#1', 'a2#2'] : [`${b}#1`]));
      expect(order).toEqual(withRetry);
      expect(c.stats()).toMatchObject({ delivered: 13, acked: 12, redelivered: 1, handlerErrors: 1 });
    });

    it('redelivers a failed event with the configured backoff until the handler succeeds', async () => {
      const bus = await newBus();
      const times: number[] = [];
      const rec = recorder((_b, meta) => {
        times.push(Date.now());
        if (meta.deliveryCount < 3) throw new Error(`attempt ${meta.deliveryCount} fails`);
      });
      const c = await consume(bus, jsonConsumer('retry', rec.handler, { backoffMs: [100, 250], maxDeliver: 4 }));
      await bus.publish(`${prefix}.job`, json('work'), { msgId: 'job-1' });
      await vi.waitFor(() => expect(c.stats().acked).toBe(1), { timeout: 5000 });
      expect(rec.seen.map((s) => [s.meta.deliveryCount, s.meta.redelivered])).toEqual([
        [1, false],
        [2, true],
        [3, true],
      ]);
      const [t1 = 0, t2 = 0, t3 = 0] = times;
      expect(t2 - t1).toBeGreaterThanOrEqual(90);
      expect(t3 - t2).toBeGreaterThanOrEqual(240);
      expect(c.stats()).toEqual({ delivered: 3, acked: 1, redelivered: 2, handlerErrors: 2, deadLettered: 0, rejectedUndecodable: 0 });
    });

    it('redelivers the unacked event to a consumer re-created with the same durable after a crash', async () => {
      const bus = await newBus();
      let release: () => void = () => undefined;
      const stuck = new Promise<void>((r) => (release = r));
      const firstSeen: string[] = [];
      const crashed = await consume(bus, {
        durable: 'worker',
        subjects: `${prefix}.>`,
        decode: (b) => dec.decode(b),
        handler: async (body) => {
          firstSeen.push(body);
          if (body === 'e2') await stuck; // the process "dies" while handling e2
        },
      });
      for (const e of ['e1', 'e2', 'e3']) await bus.publish(`${prefix}.q`, enc.encode(e), { msgId: e });
      await vi.waitFor(() => expect(firstSeen).toEqual(['e1', 'e2']), { timeout: 5000 });
      await crashed.close({ graceful: false });
      release(); // the abandoned handler finishing late must not ack anything
      expect(crashed.stats().acked).toBe(1);

      const again: Array<[string, number]> = [];
      const revived = await consume(bus, {
        durable: 'worker',
        subjects: `${prefix}.>`,
        decode: (b) => dec.decode(b),
        handler: (body, meta) => {
          again.push([body, meta.deliveryCount]);
          return Promise.resolve();
        },
      });
      await vi.waitFor(() => expect(revived.stats().acked).toBe(2), { timeout: timing.crashRedeliveryMs + 5000 });
      expect(again).toEqual([
        ['e2', 2],
        ['e3', 1],
      ]);
    });

    it('graceful close lets the in-flight handler finish and ack; nothing is redelivered afterwards', async () => {
      const bus = await newBus();
      let release: () => void = () => undefined;
      const slow = new Promise<void>((r) => (release = r));
      let entered = false;
      const c = await consume(bus, jsonConsumer('graceful', async () => {
        entered = true;
        await slow;
      }));
      await bus.publish(`${prefix}.q`, json(1), { msgId: 'one' });
      await vi.waitFor(() => expect(entered).toBe(true), { timeout: 5000 });
      const closing = c.close();
      setTimeout(release, 50);
      await closing;
      expect(c.stats().acked).toBe(1);

      const rec = recorder();
      const c2 = await consume(bus, jsonConsumer('graceful', rec.handler));
      await bus.publish(`${prefix}.q`, json(2), { msgId: 'two' });
      await vi.waitFor(() => expect(c2.stats().acked).toBe(1), { timeout: 5000 });
      expect(rec.bodies()).toEqual([2]);
    });

    it('dead-letters an undecodable event at once, counts it, never retries it, and moves on', async () => {
      const bus = await newBus();
      const rejections: Rejection[] = [];
      const rec = recorder();
      const c = await consume(bus, jsonConsumer('poison', rec.handler, { maxDeliver: 5, onReject: (r) => rejections.push(r) }));
      await bus.publish(`${prefix}.in`, json('ok-1'), { msgId: 'a' });
      const bad = await bus.publish(`${prefix}.in`, enc.encode('{not json'), { msgId: 'b' });
      await bus.publish(`${prefix}.in`, json('ok-2'), { msgId: 'c' });
      await vi.waitFor(() => expect(c.stats().acked).toBe(2), { timeout: 5000 });

      expect(rec.bodies()).toEqual(['ok-1', 'ok-2']);
      expect(c.stats()).toEqual({ delivered: 3, acked: 2, redelivered: 0, handlerErrors: 0, deadLettered: 0, rejectedUndecodable: 1 });
      expect(rejections).toHaveLength(1);
      expect(rejections[0]).toMatchObject({
        reason: 'undecodable',
        durable: 'poison',
        subject: `${prefix}.in`,
        sequence: bad.sequence,
        deliveryCount: 1,
        deadLetterSubject: bus.deadLetterSubject('poison'),
      });
      expect(rejections[0]?.error).toBeInstanceOf(SyntaxError);

      const dlq: Array<{ raw: string; meta: EventMeta }> = [];
      const dlqConsumer = await consume(bus, {
        durable: 'poison-dlq-reader',
        subjects: bus.deadLetterSubject('poison'),
        decode: (b) => dec.decode(b),
        handler: (raw, meta) => {
          dlq.push({ raw, meta });
          return Promise.resolve();
        },
      });
      await vi.waitFor(() => expect(dlqConsumer.stats().acked).toBe(1), { timeout: 5000 });
      expect(dlq[0]?.raw).toBe('{not json');
      const info = parseDeadLetter(dlq[0]?.meta.headers ?? {});
      expect(info).toMatchObject({
        subject: `${prefix}.in`,
        sequence: bad.sequence,
        msgId: 'b',
        durable: 'poison',
        reason: 'undecodable',
        deliveryCount: 1,
      });
      expect(info?.error).toMatch(/SyntaxError/);

      // Not redelivered later either.
      await new Promise((r) => setTimeout(r, 200));
      expect(c.stats().delivered).toBe(3);
    });

    it('dead-letters an event whose handler fails maxDeliver times, then carries on', async () => {
      const bus = await newBus();
      const rejections: Rejection[] = [];
      const rec = recorder((body) => {
        if (body === 'bad') throw new Error('handler cannot process "bad"\nsecond line');
      });
      const c = await consume(bus, jsonConsumer('exhaust', rec.handler, { maxDeliver: 3, backoffMs: [10, 20], onReject: (r) => rejections.push(r) }));
      const bad = await bus.publish(`${prefix}.in`, json('bad'), { msgId: 'bad' });
      await bus.publish(`${prefix}.in`, json('good'), { msgId: 'good' });
      await vi.waitFor(() => expect(c.stats().acked).toBe(1), { timeout: 5000 });

      expect(rec.seen.map((s) => [s.body, s.meta.deliveryCount])).toEqual([
        ['bad', 1],
        ['bad', 2],
        ['bad', 3],
        ['good', 1],
      ]);
      expect(c.stats()).toEqual({ delivered: 4, acked: 1, redelivered: 2, handlerErrors: 3, deadLettered: 1, rejectedUndecodable: 0 });
      expect(rejections.map((r) => [r.reason, r.sequence, r.deliveryCount])).toEqual([['handler-failed', bad.sequence, 3]]);

      const dlq: EventMeta[] = [];
      const reader = await consume(bus, {
        durable: 'exhaust-dlq-reader',
        subjects: bus.deadLetterSubject('exhaust'),
        decode: parseJson,
        handler: (body, meta) => {
          expect(body).toBe('bad');
          dlq.push(meta);
          return Promise.resolve();
        },
      });
      await vi.waitFor(() => expect(reader.stats().acked).toBe(1), { timeout: 5000 });
      expect(parseDeadLetter(dlq[0]?.headers ?? {})).toMatchObject({
        reason: 'handler-failed',
        deliveryCount: 3,
        error: 'Error: handler cannot process "bad" second line',
      });
      await new Promise((r) => setTimeout(r, 150));
      expect(c.stats().delivered).toBe(4);
    });

    it('dead-letters an event that keeps coming back unanswered (consumers crashing) past maxDeliver', async () => {
      const bus = await newBus();
      let entered = false;
      const hung = await consume(bus, jsonConsumer('crashy', async () => {
        entered = true;
        await new Promise(() => undefined);
      }, { maxDeliver: 1 }));
      await bus.publish(`${prefix}.in`, json('x'), { msgId: 'x' });
      await vi.waitFor(() => expect(entered).toBe(true), { timeout: 5000 });
      await hung.close({ graceful: false });

      const rejections: Rejection[] = [];
      const rec = recorder();
      const next = await consume(bus, jsonConsumer('crashy', rec.handler, { maxDeliver: 1, onReject: (r) => rejections.push(r) }));
      await vi.waitFor(() => expect(next.stats().deadLettered).toBe(1), { timeout: timing.crashRedeliveryMs + 5000 });
      expect(rec.seen).toHaveLength(0);
      expect(rejections.map((r) => [r.reason, r.deliveryCount])).toEqual([['delivery-exhausted', 2]]);
    });

    it('starts a new durable at the end of the stream when asked to', async () => {
      const bus = await newBus();
      await bus.publish(`${prefix}.old`, json('old'), { msgId: 'old' });
      const rec = recorder();
      const c = await consume(bus, jsonConsumer('fresh', rec.handler, { deliverFrom: 'new' }));
      await bus.publish(`${prefix}.new`, json('new'), { msgId: 'new' });
      await vi.waitFor(() => expect(c.stats().acked).toBe(1), { timeout: 5000 });
      expect(rec.bodies()).toEqual(['new']);
    });

    it('starts a durable asked for with other filters over, on those filters, and keeps it live', async () => {
      const bus = await newBus();
      await bus.publish(`${prefix}.b`, json('b1'), { msgId: 'b1' });
      await bus.publish(`${prefix}.a`, json('a1'), { msgId: 'a1' });
      const onA = recorder();
      const a = await consume(bus, jsonConsumer('switch', onA.handler, { subjects: `${prefix}.a` }));
      await vi.waitFor(() => expect(a.stats().acked).toBe(1), { timeout: 5000 });
      await a.close();

      // b1 lies before the cursor a left behind: an in-place filter change would skip it.
      const onB = recorder();
      const b = await consume(bus, jsonConsumer('switch', onB.handler, { subjects: `${prefix}.b` }));
      await vi.waitFor(() => expect(b.stats().acked).toBe(1), { timeout: 5000 });
      // nats-server 2.9 delivers to an in-place updated filter only with the next pull (about 15 s on).
      await bus.publish(`${prefix}.b`, json('b2'), { msgId: 'b2' });
      await vi.waitFor(() => expect(b.stats().acked).toBe(2), { timeout: 5000 });
      expect(onA.bodies()).toEqual(['a1']);
      expect(onB.bodies()).toEqual(['b1', 'b2']);

      // The same filters again resume where the durable is.
      await b.close();
      await bus.publish(`${prefix}.b`, json('b3'), { msgId: 'b3' });
      const again = recorder();
      const c = await consume(bus, jsonConsumer('switch', again.handler, { subjects: [`${prefix}.b`] }));
      await vi.waitFor(() => expect(c.stats().acked).toBe(1), { timeout: 5000 });
      expect(again.bodies()).toEqual(['b3']);
    });

    it('forgets a durable left without a consumer past its inactive threshold, never one still consumed', async () => {
      const bus = await newBus();
      await bus.publish(`${prefix}.a`, json('a1'), { msgId: 'a1' });
      const first = { idle: recorder(), kept: recorder() };
      const idle = await consume(bus, jsonConsumer('idle', first.idle.handler, { inactiveThresholdMs: 300 }));
      const kept = await consume(bus, jsonConsumer('kept', first.kept.handler));
      await vi.waitFor(() => expect([idle.stats().acked, kept.stats().acked]).toEqual([1, 1]), { timeout: 5000 });
      // Attached for three thresholds: still the same durable, at its cursor.
      await new Promise((resolve) => setTimeout(resolve, 900));
      await bus.publish(`${prefix}.a`, json('a2'), { msgId: 'a2' });
      await vi.waitFor(() => expect([idle.stats().acked, kept.stats().acked]).toEqual([2, 2]), { timeout: 5000 });
      await Promise.all([idle.close(), kept.close()]);

      await new Promise((resolve) => setTimeout(resolve, 1500));
      await bus.publish(`${prefix}.a`, json('a3'), { msgId: 'a3' });
      const again = { idle: recorder(), kept: recorder() };
      const idle2 = await consume(bus, jsonConsumer('idle', again.idle.handler, { inactiveThresholdMs: 300 }));
      // A threshold given to a durable that has none updates it: it resumes.
      const kept2 = await consume(bus, jsonConsumer('kept', again.kept.handler, { inactiveThresholdMs: 300 }));
      await vi.waitFor(() => expect([idle2.stats().acked, kept2.stats().acked]).toEqual([3, 1]), { timeout: 5000 });
      // The idle durable was gone, so its new consumer starts from the beginning; the kept one resumes.
      expect(again.idle.bodies()).toEqual(['a1', 'a2', 'a3']);
      expect(again.kept.bodies()).toEqual(['a3']);
    });

    it('rejects bad subjects, bad durables, self-dead-lettering filters and use after close', async () => {
      const bus = await newBus();
      const data = json(1);
      await expect(bus.publish(`${prefix}.a b`, data, { msgId: '1' })).rejects.toThrow(InvalidSubjectError);
      await expect(bus.publish(`${prefix}.*`, data, { msgId: '1' })).rejects.toThrow(/without whitespace or wildcards/);
      await expect(bus.publish(`elsewhere.${prefix}`, data, { msgId: '1' })).rejects.toThrow(/is not stored by this bus/);
      const base = jsonConsumer('ok', () => Promise.resolve());
      await expect(bus.consume({ ...base, durable: 'has.dot' })).rejects.toThrow(/invalid durable name 'has.dot'/);
      await expect(bus.consume({ ...base, subjects: `${prefix}.>.x` })).rejects.toThrow(/'>' only as the last token/);
      await expect(bus.consume({ ...base, subjects: `${prefix}-dlq.>` })).rejects.toThrow(/matches its own dead-letter subject/);
      await expect(bus.consume({ ...base, maxDeliver: 0 })).rejects.toThrow(/maxDeliver must be an integer >= 1/);
      await expect(bus.consume({ ...base, inactiveThresholdMs: 0.5 })).rejects.toThrow(/inactiveThresholdMs must be an integer >= 1, got 0.5/);
      await bus.close();
      await expect(bus.publish(`${prefix}.a`, data, { msgId: '1' })).rejects.toThrow(EventBusClosedError);
      await expect(bus.consume(base)).rejects.toThrow(EventBusClosedError);
    });
  });
}
