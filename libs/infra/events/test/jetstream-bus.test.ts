import { startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createJetStreamBus,
  EventBusUnavailableError,
  type Consumer,
  type EventBus,
  type JetStreamBusOptions,
} from '../src/index.js';
import { runBusContract, uniquePrefix } from './bus-contract.js';

const ACK_WAIT_MS = 1000;
let server: NatsServerHandle;

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

function options(prefix: string, extra: Partial<JetStreamBusOptions> = {}): JetStreamBusOptions {
  return {
    servers: server.url,
    stream: { name: prefix, subjects: [`${prefix}.>`] },
    deadLetterPrefix: `${prefix}-dlq`,
    ackWaitMs: ACK_WAIT_MS,
    reconnectTimeWaitMs: 50,
    reconnectMaxWaitMs: 200,
    ...extra,
  };
}

runBusContract('JetStream', (prefix) => createJetStreamBus(options(prefix)), { crashRedeliveryMs: ACK_WAIT_MS });

const enc = new TextEncoder();
const dec = new TextDecoder();

function collect(bus: EventBus, durable: string, subjects: string, seen: string[]): Promise<Consumer> {
  return bus.consume({
    durable,
    subjects,
    decode: (b) => dec.decode(b),
    handler: (s) => {
      seen.push(s);
      return Promise.resolve();
    },
  });
}

describe('JetStream bus specifics', () => {
  it('fails fast with a typed error when no server is reachable', async () => {
    const err = await createJetStreamBus({ servers: 'nats://127.0.0.1:1', stream: { name: 'X', subjects: ['x.>'] } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EventBusUnavailableError);
    expect((err as Error).message).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  it('refuses several subject filters on a server older than 2.10 instead of silently ignoring them', async () => {
    const prefix = uniquePrefix();
    const bus = await createJetStreamBus(options(prefix));
    try {
      await expect(
        bus.consume({ durable: 'multi', subjects: [`${prefix}.a`, `${prefix}.b`], decode: (b) => b, handler: () => Promise.resolve() }),
      ).rejects.toThrow(/several subject filters need nats-server >= 2\.10 \(connected to 2\.9\./);
    } finally {
      await bus.close();
    }
  });

  it('survives a server crash and restart on the same store: stored events, consumers and publishes carry on', async () => {
    const prefix = uniquePrefix();
    const bus = await createJetStreamBus(options(prefix, { requestTimeoutMs: 8000 }));
    try {
      await bus.publish(`${prefix}.e`, enc.encode('before-1'), { msgId: 'b1' });
      await bus.publish(`${prefix}.e`, enc.encode('before-2'), { msgId: 'b2' });

      server.kill();
      await server.restart();

      const seen: string[] = [];
      const c = await collect(bus, 'survivor', `${prefix}.>`, seen);
      await vi.waitFor(() => expect(seen).toEqual(['before-1', 'before-2']), { timeout: 8000 });

      // A crash while the consumer is running and a publish issued during the outage.
      server.kill();
      const duringOutage = bus.publish(`${prefix}.e`, enc.encode('during'), { msgId: 'd1' });
      await new Promise((r) => setTimeout(r, 300));
      await server.restart();
      expect((await duringOutage).duplicate).toBe(false);
      await bus.publish(`${prefix}.e`, enc.encode('after'), { msgId: 'a1' });
      await vi.waitFor(
        () => {
          expect(seen.slice(-2)).toEqual(['during', 'after']);
          expect(c.stats().acked).toBe(seen.length);
        },
        { timeout: 8000 },
      );
      // A SIGKILLed server may lose acks it had not yet written to its store, so events acked just
      // before the crash can come again: at-least-once, in order, nothing lost, nothing invented.
      expect([...new Set(seen)]).toEqual(['before-1', 'before-2', 'during', 'after']);
      expect(seen.filter((s) => s === 'during')).toHaveLength(1);
    } finally {
      await bus.close();
    }
  });

  it('gives up on a publish with a typed error once requestTimeoutMs has passed without a server', async () => {
    const prefix = uniquePrefix();
    const bus = await createJetStreamBus(options(prefix, { requestTimeoutMs: 600 }));
    try {
      server.kill();
      const started = Date.now();
      const err = await bus.publish(`${prefix}.e`, enc.encode('x'), { msgId: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EventBusUnavailableError);
      expect((err as Error).message).toMatch(/got no answer from JetStream within 600 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await server.restart();
      await bus.close();
    }
  });

  it('hands work unacked by a crashed process to another connection consuming the same durable', async () => {
    const prefix = uniquePrefix();
    const busA = await createJetStreamBus(options(prefix, { name: 'process-a' }));
    const busB = await createJetStreamBus(options(prefix, { name: 'process-b' }));
    try {
      let entered = false;
      const a = await busA.consume({
        durable: 'shared',
        subjects: `${prefix}.>`,
        decode: (b) => dec.decode(b),
        handler: async () => {
          entered = true;
          await new Promise(() => undefined); // process A hangs, then dies
        },
      });
      await busA.publish(`${prefix}.job`, enc.encode('job-1'), { msgId: 'j1' });
      await busA.publish(`${prefix}.job`, enc.encode('job-2'), { msgId: 'j2' });
      await vi.waitFor(() => expect(entered).toBe(true), { timeout: 5000 });
      await a.close({ graceful: false });
      await busA.close();

      const seen: string[] = [];
      const b = await collect(busB, 'shared', `${prefix}.>`, seen);
      await vi.waitFor(() => expect(b.stats().acked).toBe(2), { timeout: ACK_WAIT_MS + 5000 });
      expect(seen).toEqual(['job-1', 'job-2']);
      expect(b.stats()).toMatchObject({ delivered: 2, acked: 2, redelivered: 1 });
    } finally {
      await busB.close();
    }
  });

  it('splits one durable between two live connections without ever running two events at once', async () => {
    const prefix = uniquePrefix();
    const buses = [await createJetStreamBus(options(prefix)), await createJetStreamBus(options(prefix))];
    try {
      let active = 0;
      let maxActive = 0;
      const handled: string[] = [];
      const consumers = await Promise.all(
        buses.map((bus) =>
          bus.consume({
            durable: 'pool',
            subjects: `${prefix}.>`,
            decode: (b) => dec.decode(b),
            handler: async (s) => {
              active++;
              maxActive = Math.max(maxActive, active);
              await new Promise((r) => setTimeout(r, 5));
              handled.push(s);
              active--;
            },
          }),
        ),
      );
      const expected = Array.from({ length: 12 }, (_, i) => `job-${i}`);
      for (const j of expected) await buses[0]?.publish(`${prefix}.job`, enc.encode(j), { msgId: j });
      await vi.waitFor(() => expect(consumers.reduce((n, c) => n + c.stats().acked, 0)).toBe(12), { timeout: 8000 });
      expect(handled).toEqual(expected);
      expect(maxActive).toBe(1);
    } finally {
      await Promise.all(buses.map((b) => b.close()));
    }
  });
});
