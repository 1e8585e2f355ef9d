/**
 * An unbounded push-to-pull queue: producers `push`, one consumer iterates. Ending it (from either
 * side) resolves a pending `next()` with `done` and runs `onEnd` once; `fail` ends it with an error.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (err: Error) => void } | undefined;
  private ended = false;
  private failure: { error: Error } | undefined;

  constructor(private readonly onEnd: () => void = () => undefined) {}

  push(item: T): void {
    if (this.ended) return;
    const waiter = this.waiting;
    if (waiter !== undefined) {
      this.waiting = undefined;
      waiter.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.items.length = 0;
    this.waiting?.resolve({ value: undefined, done: true });
    this.waiting = undefined;
    this.onEnd();
  }

  /** Ends the queue so that the consumer's next `next()` (after the queued items) rejects with `error`. */
  fail(error: Error): void {
    if (this.ended) return;
    if (this.waiting !== undefined) {
      this.waiting.reject(error);
      this.waiting = undefined;
    } else {
      this.failure = { error };
    }
    this.ended = true;
    this.onEnd();
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure !== undefined) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** Ends `queue` when `signal` aborts; returns the detach function. */
export function endOnAbort(queue: { end(): void }, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    queue.end();
    return () => undefined;
  }
  const onAbort = () => queue.end();
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}
