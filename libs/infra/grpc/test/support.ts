import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { InvalidArgumentError, MstarError, NotFoundError, ResourceExhaustedError, UnavailableError } from '@mstar/errors';
import { createLogger, type Logger } from '@mstar/telemetry';
import { jsonServiceDefinition } from '@mstar/testing';
import { service as healthService } from 'grpc-health-check';
import { serverStream, unary, type GrpcClientConstructor, type UnaryMethod } from '../src/index.js';

export const PROBE_SERVICE = 'mstar.test.v1.Probe';
export const PROBE_PROTO = fileURLToPath(new URL('./fixtures/probe.proto', import.meta.url));

export const probeDefinition = jsonServiceDefinition(PROBE_SERVICE, {
  Echo: 'unary',
  Slow: 'unary',
  Fail: 'unary',
  Flaky: 'unary',
  Count: 'serverStream',
});

export interface EchoRequest { text: string }
export interface EchoReply { text: string; deadlineInMs: number }
export interface SlowRequest { ms: number; text?: string }
export interface FailRequest { kind: 'invalid' | 'notfound' | 'internal' | 'sync' | 'mstar-internal' }
export interface FlakyRequest { key: string; failTimes: number; code: 'UNAVAILABLE' | 'RESOURCE_EXHAUSTED' | 'INVALID_ARGUMENT' }
export interface CountRequest { to: number; everyMs?: number; failAfter?: number }
export interface CountReply { n: number }

export interface ProbeClient extends grpc.Client {
  Echo: UnaryMethod<EchoRequest, EchoReply>;
  Slow: UnaryMethod<SlowRequest, EchoReply>;
  Fail: UnaryMethod<FailRequest, EchoReply>;
  Flaky: UnaryMethod<FlakyRequest, EchoReply>;
  Count(request: CountRequest, options?: Partial<grpc.CallOptions>): grpc.ClientReadableStream<CountReply>;
}

export const ProbeClient = grpc.makeGenericClientConstructor(probeDefinition, 'Probe') as unknown as GrpcClientConstructor<ProbeClient>;

/** What the Probe handlers observed, for assertions about the server side. */
export interface ProbeLog {
  attempts: Map<string, number>;
  aborted: string[];
  streamed: number;
}

export function probeImplementation(log: ProbeLog = { attempts: new Map(), aborted: [], streamed: 0 }): grpc.UntypedServiceImplementation {
  const deadlineIn = (call: grpc.ServerUnaryCall<unknown, unknown>): number => {
    const d = call.getDeadline();
    const at = d instanceof Date ? d.getTime() : d;
    return Number.isFinite(at) ? at - Date.now() : -1;
  };
  return {
    Echo: unary<EchoRequest, EchoReply>((req, call) => Promise.resolve({ text: req.text, deadlineInMs: deadlineIn(call) })),
    Slow: unary<SlowRequest, EchoReply>(async (req, call, signal) => {
      try {
        await sleep(req.ms, undefined, { signal });
      } catch (err) {
        log.aborted.push(req.text ?? 'slow');
        throw err;
      }
      return { text: req.text ?? 'slow', deadlineInMs: deadlineIn(call) };
    }),
    Fail: unary<FailRequest, EchoReply>(async (req) => {
      await Promise.resolve();
      switch (req.kind) {
        case 'invalid':
          throw new InvalidArgumentError('must be in [0, 2], got 3', { field: 'temperature' });
        case 'notfound':
          throw new NotFoundError('checkpoint v7 does not exist');
        case 'mstar-internal':
          throw new MstarError('INTERNAL', 'weights at /var/lib/weights are unreadable');
        default:
          throw new Error('connection string postgres://user:hunter2@db failed');
      }
    }),
    Flaky: unary<FlakyRequest, EchoReply>((req) => {
      const attempt = (log.attempts.get(req.key) ?? 0) + 1;
      log.attempts.set(req.key, attempt);
      if (attempt <= req.failTimes) {
        if (req.code === 'UNAVAILABLE') throw new UnavailableError(`attempt ${attempt} failed`);
        if (req.code === 'RESOURCE_EXHAUSTED') throw new ResourceExhaustedError(`attempt ${attempt} failed`);
        throw new InvalidArgumentError(`attempt ${attempt} rejected`, { field: 'key' });
      }
      return Promise.resolve({ text: `ok after ${attempt}`, deadlineInMs: -1 });
    }),
    Count: serverStream<CountRequest, CountReply>(async (req, call, signal) => {
      for (let n = 1; n <= req.to; n++) {
        if (signal.aborted) {
          log.aborted.push('count');
          return;
        }
        if (req.failAfter !== undefined && n > req.failAfter) throw new InvalidArgumentError(`cannot count past ${req.failAfter}`, { field: 'to' });
        call.write({ n });
        log.streamed++;
        if (req.everyMs) await sleep(req.everyMs).catch(() => undefined);
      }
    }),
  };
}

export interface HealthClient extends grpc.Client {
  check: UnaryMethod<{ service: string }, { status: string }>;
  watch(request: { service: string }, options?: Partial<grpc.CallOptions>): grpc.ClientReadableStream<{ status: string }>;
}

export const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health') as unknown as GrpcClientConstructor<HealthClient>;

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** Asks the server's reflection service one question over a fresh stream. */
export async function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const protoPath = fileURLToPath(import.meta.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'));
  const pkg = grpc.loadPackageDefinition(loadSync(protoPath, { longs: String, enums: String, defaults: true, oneofs: true }));
  const Ctor = (pkg.grpc as grpc.GrpcObject).reflection as grpc.GrpcObject;
  const Reflection = (Ctor.v1 as grpc.GrpcObject).ServerReflection as grpc.ServiceClientConstructor;
  const client = new Reflection(address, grpc.credentials.createInsecure());
  try {
    const stream = (client.ServerReflectionInfo as (o: Partial<grpc.CallOptions>) => grpc.ClientDuplexStream<unknown, ReflectionResponse>)({ deadline: Date.now() + 5000 });
    const reply = new Promise<ReflectionResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write({ host: '', ...request });
    stream.end();
    return await reply;
  } finally {
    client.close();
  }
}

export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
}

export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'grpc-test',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

export function errorOf(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: grpc.ServiceError) => err,
  );
}
