import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import type { Logger, Metrics } from '@mstar/telemetry';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import { msUntilDeadline } from './handlers.js';
import { GrpcStatusError, Status, statusName, toGrpcStatus } from './status.js';

export type { PackageDefinition } from '@grpc/proto-loader';

export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/**
 * A health entry that is SERVING for as long as the server answers, whatever `setReady` says:
 * what a liveness probe asks. "" and the registered services stay NOT_SERVING until the model is
 * loaded, which may take as long as a training stage; a liveness probe on them would restart a
 * healthy replica that is only waiting for its first checkpoint.
 */
export const LIVENESS_HEALTH_NAME = 'liveness';

export interface GrpcServiceRegistration {
  /** A grpc-js service definition, e.g. ts-proto's `PolicyInferenceService`. */
  definition: grpc.ServiceDefinition;
  /** Handlers keyed like `definition` (ts-proto's `PolicyInferenceServer`). */
  implementation: grpc.UntypedServiceImplementation;
  /** Fully-qualified name (`mstar.policy.v1.PolicyInference`); derived from the method paths when omitted. */
  name?: string;
}

export interface StartGrpcServerOptions {
  services: readonly GrpcServiceRegistration[];
  /** 0 (the default) binds an ephemeral port; read it from the result. */
  port?: number;
  /** Defaults to 0.0.0.0. */
  host?: string;
  logger: Logger;
  /** How long shutdown waits for in-flight calls before cancelling them. Default 10 s. */
  shutdownGraceMs?: number;
  /**
   * Descriptors served by server reflection, e.g. from `loadProtoPackageDefinition`. Every registered
   * service must be in it. The health service's descriptors are always added.
   */
  reflection?: PackageDefinition;
  /** Drain and stop on SIGTERM/SIGINT; a second signal cancels what is still running. */
  installSignalHandlers?: boolean;
  /** Adds `grpc_server_*` call counters, latency histogram and in-flight gauge to these metrics. */
  metrics?: Metrics;
  credentials?: grpc.ServerCredentials;
  serverOptions?: grpc.ServerOptions;
}

export interface RunningGrpcServer {
  port: number;
  /** Flips health of "" and every registered service. Ignored once shutdown has begun. */
  setReady(ready: boolean): void;
  /** Calls to registered services that have started and not yet answered. */
  inFlight(): number;
  /** Drains then stops; the same promise for every caller. */
  shutdown(reason: string): Promise<void>;
  /** Resolves when the server has stopped, whoever asked it to. */
  closed: Promise<void>;
}

/** Loads `.proto` files the way grpc-js's own tools do, for `reflection`. */
export function loadProtoPackageDefinition(
  files: readonly string[],
  options: { includeDirs?: string[] } = {},
): PackageDefinition {
  return loadSync([...files], { includeDirs: options.includeDirs ?? [], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
}

/** The fully-qualified service name encoded in the definition's method paths (`/pkg.Svc/Method`). */
export function serviceNameOf(definition: grpc.ServiceDefinition): string | undefined {
  const names = new Set(Object.values(definition).map((m) => /^\/([^/]+)\//.exec(m.path)?.[1]));
  if (names.size !== 1) return undefined;
  return [...names][0];
}

// After the last in-flight call answers, its response still has to be flushed to the socket.
const FLUSH_ALLOWANCE_MS = 250;

// Every grpc-js server call object is an EventEmitter with these surface methods.
type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;
type AnyHandler = (call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => void;
type WritableCall = grpc.ServerWritableStream<unknown, unknown>;

interface CallMetrics {
  handled: { inc(labels: { method: string; code: string }): void };
  seconds: { observe(labels: { method: string }, value: number): void };
  inFlight: { inc(): void; dec(): void };
}

export async function startGrpcServer(options: StartGrpcServerOptions): Promise<RunningGrpcServer> {
  const logger = options.logger.child({ component: 'grpc-server' });
  const graceMs = options.shutdownGraceMs ?? 10_000;
  const names = options.services.map(({ definition, name }) => resolveServiceName(definition, name));
  if (new Set(names).size !== names.length) {
    throw new InvalidArgumentError(`services registered twice: ${names.join(', ')}`, { field: 'services' });
  }
  if (options.reflection) {
    const missing = names.filter((n) => !(n in options.reflection!));
    if (missing.length > 0) {
      throw new InvalidArgumentError(`reflection descriptors lack registered services: ${missing.join(', ')}`, { field: 'reflection' });
    }
  }

  const server = new grpc.Server(options.serverOptions);
  const callMetrics = options.metrics ? createCallMetrics(options.metrics) : undefined;
  let draining = false;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  // Long-lived infrastructure streams (health Watch, reflection): ended at shutdown so the final
  // graceful close does not wait for clients that never hang up.
  const openInfraStreams = new Set<WritableCall>();

  const instrument = (
    definition: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
    kind: 'work' | 'infra',
  ): grpc.UntypedServiceImplementation => {
    const wrapped: grpc.UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(definition)) {
      // grpc-js accepts a handler under the method key or its originalName (proto-loader's lowerCamel).
      const handler = (implementation[key] ?? (method.originalName === undefined ? undefined : implementation[method.originalName])) as
        | AnyHandler
        | undefined;
      if (handler === undefined) {
        throw new InvalidArgumentError(`no handler for ${method.path}`, { field: `implementation.${key}` });
      }
      const hasCallback = !method.responseStream;
      const wrappedHandler: AnyHandler = (call, callback) => {
        if (kind === 'work' && draining) {
          callMetrics?.handled.inc({ method: method.path, code: statusName(Status.UNAVAILABLE) });
          refuse(call, callback, new grpc.StatusBuilder().withCode(Status.UNAVAILABLE).withDetails('server is shutting down').build());
          return;
        }
        const startedAt = performance.now();
        let settled = false;
        let deadlineTimer: NodeJS.Timeout | undefined;
        const settle = (code: Status): void => {
          if (settled) return;
          settled = true;
          clearTimeout(deadlineTimer);
          call.off('cancelled', onCancelled);
          if (kind === 'infra') {
            openInfraStreams.delete(call as WritableCall);
            return;
          }
          callMetrics?.handled.inc({ method: method.path, code: statusName(code) });
          callMetrics?.seconds.observe({ method: method.path }, (performance.now() - startedAt) / 1000);
          callMetrics?.inFlight.dec();
          inFlight--;
          if (inFlight === 0) onIdle?.();
        };
        const onCancelled = (): void => settle(Status.CANCELLED);
        const logFailure = (status: Partial<grpc.StatusObject>): void => {
          const code = status.code ?? Status.UNKNOWN;
          if (code === Status.INTERNAL || code === Status.UNKNOWN) {
            const cause = status instanceof GrpcStatusError ? status.cause : status;
            logger.error({ method: method.path, err: cause }, 'grpc call failed with an internal error');
          } else {
            logger.debug({ method: method.path, code: statusName(code), details: status.details }, 'grpc call failed');
          }
        };

        if (kind === 'work') {
          inFlight++;
          callMetrics?.inFlight.inc();
        } else if (method.responseStream) {
          openInfraStreams.add(call as WritableCall);
        }
        call.once('cancelled', onCancelled);
        const ms = msUntilDeadline(call.getDeadline());
        if (ms !== undefined) deadlineTimer = setTimeout(() => settle(Status.DEADLINE_EXCEEDED), Math.max(ms, 0)).unref();

        let tracked: grpc.sendUnaryData<unknown> | undefined;
        if (hasCallback) {
          tracked = (err, value, trailer, flags) => {
            if (err) {
              const status = asStatus(err);
              logFailure(status);
              settle(status.code ?? Status.UNKNOWN);
              callback!(status, value, trailer, flags);
            } else {
              settle(Status.OK);
              callback!(null, value, trailer, flags);
            }
          };
        } else {
          // grpc-js sends whatever a stream emits as 'error', a plain Error's message included:
          // map it before grpc-js's own listener sees it.
          const emit = call.emit.bind(call);
          call.emit = ((event: string | symbol, ...args: unknown[]) =>
            event === 'error' ? emit('error', asStatus(args[0])) : emit(event, ...args)) as typeof call.emit;
          call.once('finish', () => settle(Status.OK));
          call.on('error', (status: Partial<grpc.StatusObject>) => {
            // Errors after the call ended (writes after a cancel) are noise, not failures.
            if (settled) return;
            logFailure(status);
            settle(status.code ?? Status.UNKNOWN);
          });
        }
        try {
          handler(call, tracked);
        } catch (err) {
          // grpc-js would turn a synchronous throw into UNKNOWN; route it through the mapper instead.
          const status = toGrpcStatus(err);
          if (tracked) tracked(status);
          else call.emit('error', status);
        }
      };
      wrapped[key] = wrappedHandler as grpc.UntypedHandleCall;
    }
    return wrapped;
  };

  for (const [i, { definition, implementation }] of options.services.entries()) {
    server.addService(definition, instrument(definition, implementation, 'work'));
    logger.debug({ service: names[i] }, 'grpc service registered');
  }

  const health = new HealthImplementation({
    ...Object.fromEntries(['', ...names].map((n) => [n, 'NOT_SERVING'])),
    [LIVENESS_HEALTH_NAME]: 'SERVING',
  });
  const infraServer = {
    addService: (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) =>
      server.addService(definition, instrument(definition, implementation, 'infra')),
  };
  health.addToServer(infraServer);
  const reflectionDefinition = { ...loadProtoPackageDefinition([healthProtoPath]), ...options.reflection };
  new ReflectionService(reflectionDefinition, { services: [...names, HEALTH_SERVICE_NAME] }).addToServer(infraServer);

  const setAll = (status: ServingStatus): void => {
    for (const name of ['', ...names]) health.setStatus(name, status);
  };

  const host = options.host ?? '0.0.0.0';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${options.port ?? 0}`,
      options.credentials ?? grpc.ServerCredentials.createInsecure(),
      (err, boundPort) => (err ? reject(new FailedPreconditionError(`cannot bind gRPC server to ${host}:${options.port ?? 0}`, { cause: err })) : resolve(boundPort)),
    );
  });
  logger.info({ host, port, services: names }, 'grpc server listening');

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let shutdownPromise: Promise<void> | undefined;
  let forceNow: (() => void) | undefined;

  const drain = async (deadline: number): Promise<boolean> => {
    if (inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), Math.max(deadline - Date.now(), 0));
      const finish = (drained: boolean): void => {
        clearTimeout(timer);
        onIdle = undefined;
        forceNow = undefined;
        resolve(drained);
      };
      onIdle = () => finish(true);
      forceNow = () => finish(false);
    });
  };

  const closeGracefully = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  const shutdown = (reason: string): Promise<void> => {
    shutdownPromise ??= (async () => {
      const startedAt = Date.now();
      const deadline = startedAt + graceMs;
      draining = true;
      setAll('NOT_SERVING');
      logger.info({ reason, inFlight, graceMs }, 'grpc server draining');
      const drained = await drain(deadline);
      if (!drained) logger.warn({ reason, inFlight }, 'grpc server cancelling calls still in flight');
      for (const call of openInfraStreams) call.end();
      const graceful = drained && (await closeGracefully(Math.max(deadline - Date.now(), FLUSH_ALLOWANCE_MS)));
      if (!graceful) server.forceShutdown();
      removeSignalHandlers();
      logger.info({ reason, ms: Date.now() - startedAt, forced: !graceful }, 'grpc server stopped');
      resolveClosed();
    })();
    return shutdownPromise;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shutdownPromise) {
      logger.warn({ signal }, 'grpc server forced to stop by a second signal');
      forceNow?.();
      return;
    }
    shutdown(signal).catch((err: unknown) => logger.error({ err }, 'grpc server shutdown failed'));
  };
  const removeSignalHandlers = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  if (options.installSignalHandlers) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  return {
    port,
    setReady(ready) {
      if (draining) return;
      setAll(ready ? 'SERVING' : 'NOT_SERVING');
      logger.info({ ready }, 'grpc server readiness changed');
    },
    inFlight: () => inFlight,
    shutdown,
    closed,
  };
}

function resolveServiceName(definition: grpc.ServiceDefinition, given: string | undefined): string {
  const derived = serviceNameOf(definition);
  if (given !== undefined && derived !== undefined && given !== derived) {
    throw new InvalidArgumentError(`service name ${given} does not match its method paths (${derived})`, { field: 'services.name' });
  }
  const name = given ?? derived;
  if (name === undefined) {
    throw new InvalidArgumentError('service name cannot be derived from its definition; pass `name`', { field: 'services.name' });
  }
  return name;
}

/**
 * Statuses we built, and plain `{ code, details }` objects from library handlers (health), go out
 * as they are; any other error (including a downstream call's ServiceError) goes through the one
 * mapper and becomes INTERNAL unless it is a domain error.
 */
function asStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof GrpcStatusError) return err;
  if (!(err instanceof Error) && typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number') {
    return err;
  }
  return toGrpcStatus(err);
}

function refuse(
  call: AnyCall,
  callback: grpc.sendUnaryData<unknown> | undefined,
  status: Partial<grpc.StatusObject>,
): void {
  if (callback) callback(status);
  else call.emit('error', status);
}

function createCallMetrics(metrics: Metrics): CallMetrics {
  return {
    handled: metrics.counter({
      name: 'grpc_server_handled_total',
      help: 'gRPC calls completed, by method and status code',
      labelNames: ['method', 'code'],
    }),
    seconds: metrics.histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Time from a call starting to its answer',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
    }),
    inFlight: metrics.gauge({ name: 'grpc_server_in_flight', help: 'gRPC calls started and not yet answered' }),
  };
}
