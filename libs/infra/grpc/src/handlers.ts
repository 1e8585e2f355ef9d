import type * as grpc from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError } from '@mstar/errors';
import { toGrpcStatus } from './status.js';

interface CallLike {
  cancelled: boolean;
  getDeadline(): grpc.Deadline;
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** Milliseconds until a grpc-js deadline, or undefined when the call has none. */
export function msUntilDeadline(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at - Date.now() : undefined;
}

/**
 * An AbortSignal that fires when the client cancels the call or its deadline passes, so handlers
 * can stop work nobody will read. `dispose` releases the timer and listener once the call is done.
 */
export function callSignal(call: CallLike): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onCancelled = (): void => controller.abort(new CancelledError('the client cancelled the call'));
  if (call.cancelled) onCancelled();
  else call.once('cancelled', onCancelled);
  const ms = msUntilDeadline(call.getDeadline());
  let timer: NodeJS.Timeout | undefined;
  if (ms !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => controller.abort(new DeadlineExceededError('the call deadline passed')), Math.max(ms, 0));
    timer.unref();
  }
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancelled);
    },
  };
}

export type UnaryHandler<Req, Res> = (
  request: Req,
  call: grpc.ServerUnaryCall<Req, Res>,
  signal: AbortSignal,
) => Promise<Res>;

/**
 * Adapts an async function to grpc-js. The call is answered exactly once: with the result, or with
 * the error mapped by `toGrpcStatus`; if the client cancelled or the deadline passed first, grpc-js
 * has already ended the call and whatever the handler does later is dropped.
 */
export function unary<Req, Res>(handler: UnaryHandler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { signal, dispose } = callSignal(call);
    let answered = false;
    const answer = (err: unknown, value?: Res): void => {
      if (answered) return;
      answered = true;
      dispose();
      if (signal.aborted) return;
      if (err === undefined) callback(null, value);
      else callback(toGrpcStatus(err));
    };
    signal.addEventListener('abort', () => answer(signal.reason), { once: true });
    run(() => handler(call.request, call, signal)).then(
      (value) => answer(undefined, value),
      (err: unknown) => answer(err ?? new Error('handler rejected without a reason')),
    );
  };
}

export type ServerStreamHandler<Req, Res> = (
  request: Req,
  call: grpc.ServerWritableStream<Req, Res>,
  signal: AbortSignal,
) => Promise<void>;

/**
 * Adapts an async function that writes responses to `call`. The stream is ended exactly once: OK
 * when the handler returns, the mapped status when it throws, and not at all by us when the client
 * cancelled or the deadline passed (grpc-js has closed it already). Handlers should check `signal`
 * between writes to stop early.
 */
export function serverStream<Req, Res>(handler: ServerStreamHandler<Req, Res>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const { signal, dispose } = callSignal(call);
    let ended = false;
    const end = (err: unknown): void => {
      if (ended) return;
      ended = true;
      dispose();
      if (signal.aborted) return;
      if (err === undefined) call.end();
      else call.emit('error', toGrpcStatus(err));
    };
    signal.addEventListener('abort', () => end(signal.reason), { once: true });
    run(() => handler(call.request, call, signal)).then(
      () => end(undefined),
      (err: unknown) => end(err ?? new Error('handler rejected without a reason')),
    );
  };
}

/** Runs `fn`; being async, it turns a synchronous throw into a rejection so one path handles both. */
async function run<T>(fn: () => Promise<T>): Promise<T> {
  return fn();
}
