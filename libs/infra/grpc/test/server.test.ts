import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { createMetrics } from '@mstar/telemetry';
import { jsonServiceDefinition } from '@mstar/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createClient,
  clientServiceConfig,
  HEALTH_SERVICE_NAME,
  INTERNAL_ERROR_MESSAGE,
  LIVENESS_HEALTH_NAME,
  loadProtoPackageDefinition,
  promiseClient,
  startGrpcServer,
  Status,
  type RunningGrpcServer,
  type StartGrpcServerOptions,
} from '../src/index.js';
import {
  captureLogger,
  errorOf,
  HealthClient,
  PROBE_PROTO,
  PROBE_SERVICE,
  ProbeClient,
  probeDefinition,
  probeImplementation,
  reflect,
  type CountReply,
  type ProbeLog,
} from './support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Started {
  server: RunningGrpcServer;
  address: string;
  log: ProbeLog;
  lines: Record<string, unknown>[];
}

async function start(overrides: Partial<StartGrpcServerOptions> = {}): Promise<Started> {
  const log: ProbeLog = { attempts: new Map(), aborted: [], streamed: 0 };
  const { logger, lines } = captureLogger();
  const server = await startGrpcServer({
    services: [{ definition: probeDefinition, implementation: probeImplementation(log) }],
    host: '127.0.0.1',
    port: 0,
    logger,
    shutdownGraceMs: 2_000,
    ...overrides,
  });
  cleanups.push(() => server.shutdown('test over'));
  return { server, address: `127.0.0.1:${server.port}`, log, lines };
}

function client<C extends grpc.Client>(make: () => C): C {
  const c = make();
  cleanups.push(() => c.close());
  return c;
}

function probe(address: string, options: Partial<Parameters<typeof createClient>[2]> = {}) {
  const raw = client(() => createClient(ProbeClient, address, { deadlineMs: 2_000, retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 }, ...options }));
  return { raw, call: promiseClient(raw) };
}

function health(address: string) {
  const raw = client(() => createClient(HealthClient, address, { deadlineMs: 2_000, streamDeadlineMs: 10_000, retry: false }));
  return { raw, call: promiseClient(raw) };
}

describe('startGrpcServer health', () => {
  it('is NOT_SERVING until ready, follows setReady both ways, and streams changes to Watch', async () => {
    const { server, address } = await start();
    const h = health(address);
    expect(await h.call.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
    expect(await h.call.check({ service: PROBE_SERVICE })).toEqual({ status: 'NOT_SERVING' });
    expect(await errorOf(h.call.check({ service: 'no.such.Service' }))).toMatchObject({ code: Status.NOT_FOUND });

    const seen: string[] = [];
    const watch = h.raw.watch({ service: PROBE_SERVICE });
    watch.on('data', (m: { status: string }) => seen.push(m.status));
    watch.on('error', () => undefined);
    await vi.waitFor(() => expect(seen).toEqual(['NOT_SERVING']));

    server.setReady(true);
    expect(await h.call.check({ service: '' })).toEqual({ status: 'SERVING' });
    expect(await h.call.check({ service: PROBE_SERVICE })).toEqual({ status: 'SERVING' });
    await vi.waitFor(() => expect(seen).toEqual(['NOT_SERVING', 'SERVING']));

    server.setReady(false);
    expect(await h.call.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
    await vi.waitFor(() => expect(seen).toEqual(['NOT_SERVING', 'SERVING', 'NOT_SERVING']));
    watch.cancel();
  });

  it('answers SERVING on the liveness entry whether or not the server is ready', async () => {
    const { server, address } = await start();
    const h = health(address);
    expect(await h.call.check({ service: LIVENESS_HEALTH_NAME })).toEqual({ status: 'SERVING' });
    server.setReady(true);
    server.setReady(false);
    expect(await h.call.check({ service: LIVENESS_HEALTH_NAME })).toEqual({ status: 'SERVING' });
    expect(await h.call.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
  });
});

describe('startGrpcServer reflection', () => {
  it('lists the registered services and health, and serves their descriptors', async () => {
    const { address } = await start({ reflection: loadProtoPackageDefinition([PROBE_PROTO]) });
    const listed = await reflect(address, { listServices: '' });
    expect(listed.listServicesResponse?.service.map((s) => s.name).sort()).toEqual([HEALTH_SERVICE_NAME, PROBE_SERVICE].sort());

    const files = await reflect(address, { fileContainingSymbol: PROBE_SERVICE });
    // A serialized FileDescriptorProto holds its names as plain UTF-8 strings.
    const descriptor = Buffer.concat(files.fileDescriptorResponse!.fileDescriptorProto).toString('utf8');
    for (const name of ['mstar.test.v1', 'Probe', 'Echo', 'Slow', 'Fail', 'Flaky', 'Count', 'CountReply']) {
      expect(descriptor).toContain(name);
    }
    expect(await reflect(address, { fileContainingSymbol: 'mstar.test.v1.Nope' })).toMatchObject({ errorResponse: { errorCode: Status.NOT_FOUND } });
  });

  it('refuses to start when reflection descriptors lack a registered service', async () => {
    const { logger } = captureLogger();
    await expect(
      startGrpcServer({
        services: [{ definition: probeDefinition, implementation: probeImplementation() }],
        logger,
        host: '127.0.0.1',
        reflection: {},
      }),
    ).rejects.toThrow(`reflection descriptors lack registered services: ${PROBE_SERVICE}`);
  });

  it('rejects a name that contradicts the method paths, and missing handlers', async () => {
    const { logger } = captureLogger();
    await expect(
      startGrpcServer({ services: [{ definition: probeDefinition, implementation: probeImplementation(), name: 'x.Y' }], logger }),
    ).rejects.toThrow(`service name x.Y does not match its method paths (${PROBE_SERVICE})`);
    const { Echo: _dropped, ...partial } = probeImplementation();
    await expect(startGrpcServer({ services: [{ definition: probeDefinition, implementation: partial }], logger })).rejects.toThrow(
      `no handler for /${PROBE_SERVICE}/Echo`,
    );
  });
});

describe('error mapping at the boundary', () => {
  it('sends a domain error with its message and hides anything else behind INTERNAL, logging the cause', async () => {
    const { address, lines } = await start();
    const { call } = probe(address);
    expect(await errorOf(call.Fail({ kind: 'invalid' }))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: 'temperature: must be in [0, 2], got 3',
    });
    expect(await errorOf(call.Fail({ kind: 'notfound' }))).toMatchObject({ code: Status.NOT_FOUND, details: 'checkpoint v7 does not exist' });
    const internal = await errorOf(call.Fail({ kind: 'internal' }));
    expect(internal).toMatchObject({ code: Status.INTERNAL, details: INTERNAL_ERROR_MESSAGE });
    expect(JSON.stringify(internal)).not.toContain('hunter2');
    expect(await errorOf(call.Fail({ kind: 'mstar-internal' }))).toMatchObject({ code: Status.INTERNAL, details: INTERNAL_ERROR_MESSAGE });

    const logged = lines.filter((l) => l.msg === 'grpc call failed with an internal error');
    expect(logged.map((l) => (l.err as { message: string }).message)).toEqual([
      'connection string postgres://user:hunter2@db failed',
      'weights at /var/lib/weights are unreadable',
    ]);
    expect(logged[0]).toMatchObject({ level: 'error', method: `/${PROBE_SERVICE}/Fail`, service: 'grpc-test' });
  });

  it('maps raw handlers too: a synchronous throw or a plain Error becomes INTERNAL, never UNKNOWN with the message', async () => {
    const rawDefinition = jsonServiceDefinition('mstar.test.v1.Raw', { Throw: 'unary', Pass: 'unary', Stream: 'serverStream', Emit: 'serverStream' });
    const { logger, lines } = captureLogger();
    const server = await startGrpcServer({
      services: [
        {
          definition: rawDefinition,
          implementation: {
            Throw: () => {
              throw new Error('sync secret');
            },
            Pass: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(new Error('callback secret')),
            Stream: () => {
              throw new Error('stream secret');
            },
            Emit: (call: grpc.ServerWritableStream<unknown, unknown>) => {
              call.write({ n: 1 });
              call.emit('error', new Error('emitted secret'));
            },
          },
        },
      ],
      logger,
      host: '127.0.0.1',
    });
    cleanups.push(() => server.shutdown('test over'));
    const raw = client(() => new (grpc.makeGenericClientConstructor(rawDefinition, 'Raw'))(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()));
    const unaryCall = (method: 'Throw' | 'Pass') =>
      new Promise((resolve, reject) =>
        raw.makeUnaryRequest(rawDefinition[method]!.path, (x) => x as Buffer, (x) => x, Buffer.from('{}'), (err, v) => (err ? reject(err) : resolve(v))),
      );
    for (const method of ['Throw', 'Pass'] as const) {
      expect(await errorOf(unaryCall(method))).toMatchObject({ code: Status.INTERNAL, details: INTERNAL_ERROR_MESSAGE });
    }
    for (const method of ['Stream', 'Emit'] as const) {
      const stream = raw.makeServerStreamRequest(rawDefinition[method]!.path, (x) => x as Buffer, (x) => x, Buffer.from('{}'));
      const streamError = await new Promise<grpc.ServiceError>((resolve) => {
        stream.on('error', resolve);
        stream.on('data', () => undefined);
      });
      expect(streamError).toMatchObject({ code: Status.INTERNAL, details: INTERNAL_ERROR_MESSAGE });
    }
    expect(lines.filter((l) => l.msg === 'grpc call failed with an internal error').map((l) => (l.err as { message: string }).message)).toEqual([
      'sync secret',
      'callback secret',
      'stream secret',
      'emitted secret',
    ]);
  });

  it('streams messages, then the mapped status when the handler throws mid-stream', async () => {
    const { address } = await start();
    const { raw } = probe(address);
    const got: number[] = [];
    for await (const msg of raw.Count({ to: 4 }) as AsyncIterable<CountReply>) got.push(msg.n);
    expect(got).toEqual([1, 2, 3, 4]);

    const partial: number[] = [];
    const failing = raw.Count({ to: 5, failAfter: 2 });
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      failing.on('data', (m: { n: number }) => partial.push(m.n));
      failing.on('error', resolve);
    });
    expect(partial).toEqual([1, 2]);
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT, details: 'to: cannot count past 2' });
  });

  it('stops a server stream when the client cancels', async () => {
    const { server, address, log } = await start();
    const { raw } = probe(address);
    const stream = raw.Count({ to: 1_000, everyMs: 5 });
    stream.on('error', () => undefined);
    await new Promise((resolve) => stream.once('data', resolve));
    stream.cancel();
    await vi.waitFor(() => expect(log.aborted).toEqual(['count']));
    const streamedAtStop = log.streamed;
    await sleep(40);
    expect(log.streamed).toBe(streamedAtStop);
    expect(log.streamed).toBeLessThan(1_000);
    expect(server.inFlight()).toBe(0);
  });
});

describe('createClient', () => {
  it('retries UNAVAILABLE and RESOURCE_EXHAUSTED, and never INVALID_ARGUMENT', async () => {
    const { address, log } = await start();
    const { call } = probe(address);
    expect(await call.Flaky({ key: 'u', failTimes: 2, code: 'UNAVAILABLE' })).toMatchObject({ text: 'ok after 3' });
    expect(log.attempts.get('u')).toBe(3);
    expect(await call.Flaky({ key: 'r', failTimes: 1, code: 'RESOURCE_EXHAUSTED' })).toMatchObject({ text: 'ok after 2' });
    expect(log.attempts.get('r')).toBe(2);

    expect(await errorOf(call.Flaky({ key: 'i', failTimes: 1, code: 'INVALID_ARGUMENT' }))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: 'key: attempt 1 rejected',
    });
    expect(log.attempts.get('i')).toBe(1);

    expect(await errorOf(call.Flaky({ key: 'x', failTimes: 10, code: 'UNAVAILABLE' }))).toMatchObject({
      code: Status.UNAVAILABLE,
      details: 'attempt 3 failed',
    });
    expect(log.attempts.get('x')).toBe(3);
  });

  it('does not retry when retries are off', async () => {
    const { address, log } = await start();
    const { call } = probe(address, { retry: false });
    expect(await errorOf(call.Flaky({ key: 'u', failTimes: 1, code: 'UNAVAILABLE' }))).toMatchObject({ code: Status.UNAVAILABLE });
    expect(log.attempts.get('u')).toBe(1);
  });

  it('puts the default deadline on every call, lets a call override it, and enforces it on both sides', async () => {
    const { server, address, log } = await start();
    const { call, raw } = probe(address, { deadlineMs: 300, streamDeadlineMs: 5_000 });
    const echoed = await call.Echo({ text: 'hi' });
    expect(echoed.text).toBe('hi');
    expect(echoed.deadlineInMs).toBeGreaterThan(0);
    expect(echoed.deadlineInMs).toBeLessThanOrEqual(300);
    expect((await call.Echo({ text: 'x' }, { deadlineMs: 4_000 })).deadlineInMs).toBeGreaterThan(3_000);

    const startedAt = Date.now();
    expect(await errorOf(call.Slow({ ms: 3_000, text: 'too-slow' }))).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(Date.now() - startedAt).toBeLessThan(1_500);
    await vi.waitFor(() => expect(log.aborted).toEqual(['too-slow']));
    expect(server.inFlight()).toBe(0);
    expect(await call.Slow({ ms: 400, text: 'overridden' }, { deadlineMs: 3_000 })).toMatchObject({ text: 'overridden' });

    // Streaming calls get the stream deadline, not the unary one.
    const got: number[] = [];
    for await (const msg of raw.Count({ to: 5, everyMs: 80 }) as AsyncIterable<CountReply>) got.push(msg.n);
    expect(got).toEqual([1, 2, 3, 4, 5]);
  });

  it('cancels a call through its AbortSignal', async () => {
    const { address, log } = await start();
    const { call } = probe(address);
    const controller = new AbortController();
    const pending = errorOf(call.Slow({ ms: 3_000, text: 'cancel-me' }, { signal: controller.signal }));
    await sleep(50);
    controller.abort();
    expect(await pending).toMatchObject({ code: Status.CANCELLED });
    await vi.waitFor(() => expect(log.aborted).toEqual(['cancel-me']));
    controller.abort();
    expect(await errorOf(call.Echo({ text: 'x' }, { signal: controller.signal }))).toMatchObject({ code: Status.CANCELLED });
  });

  it('fails fast with UNAVAILABLE after retrying when nothing listens', async () => {
    const { call } = probe('127.0.0.1:1', { deadlineMs: 3_000 });
    const startedAt = Date.now();
    expect(await errorOf(call.Echo({ text: 'x' }))).toMatchObject({ code: Status.UNAVAILABLE });
    expect(Date.now() - startedAt).toBeLessThan(2_500);
  });

  it('spreads calls round-robin over every address the target resolves to', async () => {
    const [a, b] = [await start(), await start()];
    // One name resolving to two replicas, as a headless Service's DNS name does.
    const target = `ipv4:${a.address},${b.address}`;
    const served = (prefix: string): number[] =>
      [a, b].map(({ log }) => [...log.attempts.keys()].filter((k) => k.startsWith(prefix)).length);
    const send = async (call: ReturnType<typeof probe>['call'], prefix: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await call.Flaky({ key: `${prefix}${i}`, failTimes: 0, code: 'UNAVAILABLE' });
    };

    const { call } = probe(target);
    // The first calls go to whichever connection is up first; once both are, calls alternate.
    await vi.waitFor(async () => {
      await send(call, 'warm-', 1);
      expect(served('warm-').every((n) => n > 0)).toBe(true);
    });
    await send(call, 'rr-', 10);
    expect(served('rr-')).toEqual([5, 5]);

    // pick_first, grpc-js's own default, sends every call to one replica.
    const pinned = probe(target, { loadBalancing: 'pick_first' });
    await send(pinned.call, 'pf-', 10);
    expect(served('pf-').sort()).toEqual([0, 10]);
  });

  it('builds one service config for load balancing and retries', () => {
    expect(JSON.parse(clientServiceConfig({ retry: false, loadBalancing: 'round_robin' }))).toEqual({ loadBalancingConfig: [{ round_robin: {} }] });
    expect(JSON.parse(clientServiceConfig({ retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 }, loadBalancing: 'pick_first' }))).toEqual({
      loadBalancingConfig: [{ pick_first: {} }],
      methodConfig: [
        {
          name: [{}],
          retryPolicy: { maxAttempts: 3, initialBackoff: '0.050s', maxBackoff: '0.500s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] },
        },
      ],
    });
  });

  it('validates its options', () => {
    expect(() => createClient(ProbeClient, 'x:1', { deadlineMs: 0 })).toThrow('must be > 0, got 0');
    expect(() => createClient(ProbeClient, 'x:1', { deadlineMs: 1, retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } })).toThrow(
      'must be an integer >= 2, got 1',
    );
    expect(() => createClient(ProbeClient, 'x:1', { deadlineMs: 1, retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 5 } })).toThrow(
      'need 0 < initialBackoffMs <= maxBackoffMs, got 10 and 5',
    );
    expect(() => promiseClient(new grpc.Client('x:1', grpc.credentials.createInsecure()))).toThrow('has no service definition');
  });

  it('exposes only unary methods as promises', async () => {
    const { address } = await start();
    const { call } = probe(address);
    expect(Object.keys(call).sort()).toEqual(['Echo', 'Fail', 'Flaky', 'Slow']);
    // @ts-expect-error streaming methods are not promise-wrapped
    expect(call.Count).toBeUndefined();
  });
});

describe('graceful shutdown in process', () => {
  it('lets in-flight calls finish, refuses new ones, reports NOT_SERVING while draining', async () => {
    const metrics = createMetrics({ service: 'grpc-test', defaultMetrics: false });
    const { server, address, lines } = await start({ metrics });
    server.setReady(true);
    const { call } = probe(address, { retry: false });
    const h = health(address);
    const slow = call.Slow({ ms: 600, text: 'in-flight' });
    await vi.waitFor(() => expect(server.inFlight()).toBe(1));

    const stopping = server.shutdown('test');
    expect(await h.call.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
    expect(await h.call.check({ service: PROBE_SERVICE })).toEqual({ status: 'NOT_SERVING' });
    // Draining is not dying: a liveness probe must not kill the process before it has drained.
    expect(await h.call.check({ service: LIVENESS_HEALTH_NAME })).toEqual({ status: 'SERVING' });
    expect(await errorOf(call.Echo({ text: 'late' }))).toMatchObject({ code: Status.UNAVAILABLE, details: 'server is shutting down' });
    server.setReady(true);
    expect(await h.call.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
    expect(server.inFlight()).toBe(1);

    expect(await slow).toMatchObject({ text: 'in-flight' });
    await stopping;
    expect(server.shutdown('again')).toBe(stopping);
    await server.closed;
    expect(lines.find((l) => l.msg === 'grpc server stopped')).toMatchObject({ reason: 'test', forced: false });

    const scraped = await metrics.registry.metrics();
    expect(scraped).toContain(`grpc_server_handled_total{method="/${PROBE_SERVICE}/Slow",code="OK",service="grpc-test"} 1`);
    expect(scraped).toContain(`grpc_server_handled_total{method="/${PROBE_SERVICE}/Echo",code="UNAVAILABLE",service="grpc-test"} 1`);
    expect(scraped).toContain(`grpc_server_handling_seconds_count{service="grpc-test",method="/${PROBE_SERVICE}/Slow"} 1`);
    expect(scraped).toContain('grpc_server_in_flight{service="grpc-test"} 0');
  });

  it('cancels calls still running when the grace period ends', async () => {
    const { server, address, lines } = await start({ shutdownGraceMs: 300 });
    const { call } = probe(address, { retry: false, deadlineMs: 5_000 });
    const h = health(address);
    const watch = h.raw.watch({ service: '' });
    watch.on('data', () => undefined);
    const watchEnded = new Promise((resolve) => {
      watch.on('error', resolve);
      watch.on('end', resolve);
    });
    const slow = errorOf(call.Slow({ ms: 4_000, text: 'stuck' }));
    await vi.waitFor(() => expect(server.inFlight()).toBe(1));
    const startedAt = Date.now();
    await server.shutdown('test');
    const took = Date.now() - startedAt;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1_500);
    expect((await slow).code).toBeOneOf([Status.UNAVAILABLE, Status.CANCELLED, Status.INTERNAL]);
    await watchEnded;
    expect(lines.find((l) => l.msg === 'grpc server stopped')).toMatchObject({ forced: true });
  });

  it('ends open health watches so a drained server stops without waiting out the grace period', async () => {
    const { server, address } = await start({ shutdownGraceMs: 5_000 });
    const h = health(address);
    const watch = h.raw.watch({ service: '' });
    watch.on('data', () => undefined);
    watch.on('error', () => undefined);
    await new Promise((resolve) => watch.once('data', resolve));
    const startedAt = Date.now();
    await server.shutdown('test');
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });
});
