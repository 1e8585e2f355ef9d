import { CancelledError, ResourceExhaustedError, UnavailableError } from '@mstar/errors';

export interface BatcherOptions<I, O> {
  /** Requests that may wait for a batch slot; one more is refused with RESOURCE_EXHAUSTED. */
  readonly maxQueue: number;
  /** Items per batch. A larger request is split over several batches (and workers). */
  readonly maxBatch: number;
  /** Batches that may run at once (one per pool worker keeps every worker busy). */
  readonly concurrency: number;
  /** Runs one batch; resolves with one output per item, in item order. `requests`: how many requests share it. */
  runBatch(items: readonly I[], requests: number): Promise<readonly O[]>;
  /** Called whenever the number of waiting requests changes. */
  onQueueDepth?(depth: number): void;
}

export interface Batcher<I, O> {
  /**
   * Resolves with one output per item, in item order, once every batch holding one of them has
   * finished. Rejects when refused, cancelled or a batch failed; also then only after the batches
   * already running with its items are done, so whatever the items reference (a leased model
   * version) stays valid until the promise settles.
   */
  submit(key: string, items: readonly I[], signal: AbortSignal): Promise<O[]>;
  /** Requests with items still waiting for a batch. */
  depth(): number;
  /** Refuses new requests, fails the waiting ones with UNAVAILABLE and waits for running batches. */
  close(): Promise<void>;
}

/**
 * Why a request stopped: the signal's reason when it is a real error (the gRPC layer aborts with
 * CancelledError / DeadlineExceededError), else a CancelledError carrying it, so a bare `abort()`
 * is reported as CANCELLED rather than as an internal error.
 */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name !== 'AbortError' ? reason : new CancelledError('the caller cancelled the request', { cause: reason });
}

interface Request<I, O> {
  readonly key: string;
  readonly items: readonly I[];
  readonly results: O[];
  /** Index of the first item not yet in a batch. */
  next: number;
  /** Items with a result. */
  done: number;
  /** Batches running with some of its items. */
  running: number;
  failure: Error | undefined;
  settled: boolean;
  settle(): void;
}

/** A slice of one request's items inside a batch. */
interface Part<I, O> {
  readonly request: Request<I, O>;
  readonly from: number;
  readonly to: number;
}

/**
 * Item batching for a one-shot model (no decode loop): when a slot is free, the oldest waiting
 * request starts a batch, which takes its items and those of the next requests with the same key,
 * in arrival order, up to `maxBatch` items. A request's items may span several batches, run on
 * different workers at once; the caller gets them back in its own order.
 */
export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
  const queue: Request<I, O>[] = [];
  const running = new Set<Promise<void>>();
  let closed = false;

  const reportDepth = (): void => options.onQueueDepth?.(queue.length);

  const dequeue = (request: Request<I, O>): void => {
    const at = queue.indexOf(request);
    if (at < 0) return;
    queue.splice(at, 1);
    reportDepth();
  };

  const fail = (request: Request<I, O>, err: Error): void => {
    request.failure ??= err;
    dequeue(request);
    request.settle();
  };

  const takeBatch = (): Part<I, O>[] => {
    const key = queue[0]?.key;
    const parts: Part<I, O>[] = [];
    let room = options.maxBatch;
    for (const request of queue) {
      if (room === 0) break;
      if (request.key !== key) continue;
      const n = Math.min(room, request.items.length - request.next);
      parts.push({ request, from: request.next, to: request.next + n });
      request.next += n;
      request.running++;
      room -= n;
    }
    for (const { request } of parts) if (request.next === request.items.length) dequeue(request);
    return parts;
  };

  const runOne = async (parts: readonly Part<I, O>[]): Promise<void> => {
    const items = parts.flatMap((p) => p.request.items.slice(p.from, p.to));
    try {
      const outputs = await options.runBatch(items, parts.length);
      if (outputs.length !== items.length) throw new Error(`a batch of ${items.length} items returned ${outputs.length} outputs`);
      let offset = 0;
      for (const { request, from, to } of parts) {
        for (let i = from; i < to; i++) request.results[i] = outputs[offset++] as O;
        request.done += to - from;
      }
    } catch (err) {
      const reason = err instanceof Error ? err : new Error(`a batch failed: ${String(err)}`, { cause: err });
      for (const { request } of parts) fail(request, reason);
    } finally {
      for (const { request } of parts) {
        request.running--;
        request.settle();
      }
    }
  };

  const pump = (): void => {
    while (running.size < options.concurrency && queue.length > 0) {
      const done: Promise<void> = runOne(takeBatch()).finally(() => {
        running.delete(done);
        pump();
      });
      running.add(done);
    }
  };

  return {
    submit(key, items, signal) {
      if (closed) return Promise.reject(new UnavailableError('the server is shutting down'));
      if (signal.aborted) return Promise.reject(abortReason(signal));
      if (items.length === 0) return Promise.resolve([]);
      if (queue.length >= options.maxQueue) {
        return Promise.reject(new ResourceExhaustedError(`the request queue is full (${options.maxQueue} waiting); retry later`));
      }
      return new Promise<O[]>((resolve, reject) => {
        const onAbort = (): void => fail(request, abortReason(signal));
        const request: Request<I, O> = {
          key,
          items,
          results: new Array<O>(items.length),
          next: 0,
          done: 0,
          running: 0,
          failure: undefined,
          settled: false,
          settle() {
            if (request.settled) return;
            const { failure } = request;
            if (failure === undefined ? request.done < items.length : request.running > 0) return;
            request.settled = true;
            signal.removeEventListener('abort', onAbort);
            if (failure === undefined) resolve(request.results);
            else reject(failure);
          },
        };
        signal.addEventListener('abort', onAbort, { once: true });
        queue.push(request);
        reportDepth();
        pump();
      });
    },
    depth: () => queue.length,
    async close() {
      closed = true;
      for (const request of [...queue]) fail(request, new UnavailableError('the server is shutting down'));
      await Promise.allSettled(running);
    },
  };
}
