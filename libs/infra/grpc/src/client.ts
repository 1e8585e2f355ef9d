import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '@mstar/errors';
import { GrpcStatusError, Status } from './status.js';

export interface RetryOptions {
  /** Total attempts including the first; grpc-js caps this at 5. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Growth per retry; default 2. */
  backoffMultiplier?: number;
}

export interface KeepaliveOptions {
  /** Ping the server after this long without activity. */
  timeMs: number;
  /** Drop the connection when a ping gets no answer within this. */
  timeoutMs: number;
  /** Ping even with no call open (keeps idle connections through NATs and load balancers). */
  permitWithoutCalls?: boolean;
}

export interface CreateClientOptions {
  /** Deadline given to every unary call that does not set its own. */
  deadlineMs: number;
  /** Deadline for streaming calls that do not set their own; defaults to `deadlineMs`. */
  streamDeadlineMs?: number;
  /** Retries on UNAVAILABLE and RESOURCE_EXHAUSTED only; `false` turns them off. */
  retry?: RetryOptions | false;
  keepalive?: KeepaliveOptions;
  /**
   * How calls spread over the addresses the target resolves to. Default `round_robin`: a
   * `host:port` or `dns:///host:port` target naming a headless Service resolves to every ready
   * replica, and each call goes to the next one. `pick_first` keeps one connection to one address.
   */
  loadBalancing?: LoadBalancingPolicy;
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

export type LoadBalancingPolicy = 'round_robin' | 'pick_first';

export type GrpcClientConstructor<C extends grpc.Client> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: Partial<grpc.ClientOptions>,
) => C;

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 4, initialBackoffMs: 100, maxBackoffMs: 2_000, backoffMultiplier: 2 };
export const DEFAULT_KEEPALIVE: KeepaliveOptions = { timeMs: 30_000, timeoutMs: 10_000, permitWithoutCalls: false };

/** Only these say "try again later"; anything else would repeat a failure or a side effect. */
export const RETRYABLE_STATUS_CODES = ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] as const;

/**
 * The grpc-js service config that retries every method of the channel on the retryable codes with
 * exponential backoff; grpc-js draws each delay uniformly within ±20% of the nominal one.
 */
export function retryServiceConfig(retry: RetryOptions): string {
  return JSON.stringify({ methodConfig: retryMethodConfig(retry) });
}

/** The channel's whole service config: the load-balancing policy, plus retries unless they are off. */
export function clientServiceConfig(options: { retry: RetryOptions | false; loadBalancing: LoadBalancingPolicy }): string {
  return JSON.stringify({
    loadBalancingConfig: [{ [options.loadBalancing]: {} }],
    ...(options.retry === false ? {} : { methodConfig: retryMethodConfig(options.retry) }),
  });
}

function retryMethodConfig(retry: RetryOptions): unknown[] {
  if (!Number.isInteger(retry.maxAttempts) || retry.maxAttempts < 2) {
    throw new InvalidArgumentError(`must be an integer >= 2, got ${retry.maxAttempts}`, { field: 'retry.maxAttempts' });
  }
  if (!(retry.initialBackoffMs > 0) || !(retry.maxBackoffMs >= retry.initialBackoffMs)) {
    throw new InvalidArgumentError(
      `need 0 < initialBackoffMs <= maxBackoffMs, got ${retry.initialBackoffMs} and ${retry.maxBackoffMs}`,
      { field: 'retry' },
    );
  }
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;
  return [
    {
      name: [{}],
      retryPolicy: {
        maxAttempts: retry.maxAttempts,
        initialBackoff: seconds(retry.initialBackoffMs),
        maxBackoff: seconds(retry.maxBackoffMs),
        backoffMultiplier: retry.backoffMultiplier ?? 2,
        retryableStatusCodes: RETRYABLE_STATUS_CODES,
      },
    },
  ];
}

/** Gives every call without a deadline the default one for its kind (unary or streaming). */
export function deadlineInterceptor(deadlineMs: number, streamDeadlineMs = deadlineMs): grpc.Interceptor {
  return (options, nextCall) => {
    if (options.deadline === undefined) {
      const { requestStream, responseStream } = options.method_definition;
      const ms = requestStream || responseStream ? streamDeadlineMs : deadlineMs;
      return new grpc.InterceptingCall(nextCall({ ...options, deadline: Date.now() + ms }));
    }
    return new grpc.InterceptingCall(nextCall(options));
  };
}

/**
 * A client (e.g. ts-proto's `PolicyInferenceClient`) whose calls always carry a deadline, retried
 * by grpc-js on UNAVAILABLE / RESOURCE_EXHAUSTED with jittered exponential backoff, on a channel
 * with keepalive. A retry happens only before any response message arrived, within the deadline.
 * Calls are spread round-robin over every address the target resolves to (see `loadBalancing`).
 */
export function createClient<C extends grpc.Client>(
  ClientCtor: GrpcClientConstructor<C>,
  address: string,
  options: CreateClientOptions,
): C {
  if (!(options.deadlineMs > 0)) {
    throw new InvalidArgumentError(`must be > 0, got ${options.deadlineMs}`, { field: 'deadlineMs' });
  }
  const keepalive = options.keepalive ?? DEFAULT_KEEPALIVE;
  const retry = options.retry ?? DEFAULT_RETRY;
  const channelOptions: grpc.ChannelOptions = {
    'grpc.keepalive_time_ms': keepalive.timeMs,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
    'grpc.keepalive_permit_without_calls': keepalive.permitWithoutCalls ? 1 : 0,
    'grpc.enable_retries': retry === false ? 0 : 1,
    'grpc.service_config': clientServiceConfig({ retry, loadBalancing: options.loadBalancing ?? 'round_robin' }),
    ...options.channelOptions,
  };
  return new ClientCtor(address, options.credentials ?? grpc.credentials.createInsecure(), {
    ...channelOptions,
    interceptors: [deadlineInterceptor(options.deadlineMs, options.streamDeadlineMs)],
  });
}

export interface UnaryCallOptions {
  /** Overrides the client's default deadline for this call. */
  deadlineMs?: number;
  metadata?: grpc.Metadata;
  /** Cancels the call (it then fails with CANCELLED). */
  signal?: AbortSignal;
}

/** The callback-style unary method shape grpc-js clients (and ts-proto's) expose as their last overload. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

export type PromiseUnary<Req, Res> = (request: Req, options?: UnaryCallOptions) => Promise<Res>;

/** Turns one callback-style unary method into `(request, options) => Promise<response>`. */
export function promisifyUnary<Req, Res>(method: UnaryMethod<Req, Res>, client: grpc.Client): PromiseUnary<Req, Res> {
  return (request, callOptions = {}) =>
    new Promise<Res>((resolve, reject) => {
      const { signal } = callOptions;
      if (signal?.aborted) {
        reject(new GrpcStatusError(Status.CANCELLED, 'cancelled before the call started'));
        return;
      }
      const onAbort = (): void => call.cancel();
      const options: Partial<grpc.CallOptions> =
        callOptions.deadlineMs === undefined ? {} : { deadline: Date.now() + callOptions.deadlineMs };
      const call = method.call(client, request, callOptions.metadata ?? new grpc.Metadata(), options, (err, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(response);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
}

// `never` as the response makes every callback fit (parameters are checked contravariantly).
type UnaryArgs<Req, Res> = [Req, grpc.Metadata, Partial<grpc.CallOptions>, (error: grpc.ServiceError | null, response: Res) => void];

/** The unary methods of client `C`, each as a promise-returning function. */
export type PromiseClient<C> = {
  [K in keyof C as C[K] extends (...args: infer A) => unknown
    ? A extends UnaryArgs<unknown, never>
      ? K
      : never
    : never]: C[K] extends (...args: infer A) => unknown
    ? A extends UnaryArgs<infer Req, infer Res>
      ? PromiseUnary<Req, Res>
      : never
    : never;
};

/**
 * Promise wrappers for every unary method of a client made by `makeGenericClientConstructor`
 * (which ts-proto's clients are): `await promiseClient(client).getModelInfo({})`. Streaming
 * methods stay on the client itself; their responses are async-iterable.
 */
export function promiseClient<C extends grpc.Client>(client: C): PromiseClient<C> {
  const definition = (client.constructor as { service?: grpc.ServiceDefinition }).service;
  if (definition === undefined) {
    throw new InvalidArgumentError('client was not made by makeGenericClientConstructor: it has no service definition', { field: 'client' });
  }
  const methods: Record<string, PromiseUnary<unknown, unknown>> = {};
  for (const [key, method] of Object.entries(definition)) {
    if (method.requestStream || method.responseStream) continue;
    const fn = (client as unknown as Record<string, UnaryMethod<unknown, unknown>>)[key];
    if (typeof fn !== 'function') continue;
    const wrapped = promisifyUnary(fn, client);
    // Like grpc-js clients, answer to the proto-loader lowerCamel alias as well as the key.
    for (const name of new Set([key, method.originalName ?? key])) methods[name] = wrapped;
  }
  return methods as PromiseClient<C>;
}
