import { CancelledError, ResourceExhaustedError, UnavailableError } from '@mstar/errors';

/** A unit of work the scheduler can batch with others of the same `key`. */
export interface WaveJob {
  /** Jobs with equal keys can share one wave (same model version and sampling settings). */
  readonly key: string;
  /** Decoder rows the job adds to a wave (prompts x samples). */
  readonly rows: number;
  /** The caller's cancellation; a job whose signal fires leaves the queue at once. */
  readonly signal: AbortSignal;
}

export interface SchedulerOptions<J extends WaveJob> {
  /** Jobs that may wait; one more is refused with RESOURCE_EXHAUSTED. */
  readonly maxQueue: number;
  /** Upper bound on the rows of one wave (a single larger job still runs, alone). */
  readonly maxWaveRows: number;
  /** Waves that may run at once (one per pool worker keeps every worker busy). */
  readonly concurrency: number;
  /**
   * Runs one wave. `signal` fires only when every job of the wave was cancelled, because the
   * jobs share their graph runs: one caller hanging up must not stop the others' samples.
   */
  runWave(jobs: readonly J[], signal: AbortSignal): Promise<void>;
  /** Called whenever the number of waiting jobs changes. */
  onQueueDepth?(depth: number): void;
}

export interface Scheduler<J extends WaveJob> {
  /** Resolves when the job's wave is done; rejects when refused, cancelled or the wave failed. */
  submit(job: J): Promise<void>;
  /** Jobs waiting for a wave. */
  depth(): number;
  /** Refuses new jobs, fails the waiting ones with UNAVAILABLE and waits for running waves. */
  close(): Promise<void>;
}

/** Why a job stopped: the signal's reason when it is an error, else a CancelledError carrying it. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new CancelledError('the caller cancelled the request', { cause: reason });
}

interface Queued<J> {
  readonly job: J;
  resolve(): void;
  reject(err: unknown): void;
  detach(): void;
}

/**
 * Wave batching: when a slot is free, the oldest waiting job starts a wave and every waiting job
 * with the same key joins it, oldest first, up to `maxWaveRows`. Jobs that arrive while a wave
 * runs wait for the next one.
 */
export function createScheduler<J extends WaveJob>(options: SchedulerOptions<J>): Scheduler<J> {
  const queue: Queued<J>[] = [];
  const running = new Set<Promise<void>>();
  let closed = false;

  const reportDepth = (): void => options.onQueueDepth?.(queue.length);

  const takeWave = (): Queued<J>[] => {
    const head = queue[0];
    if (head === undefined) return [];
    const wave: Queued<J>[] = [];
    let rows = 0;
    for (let i = 0; i < queue.length; ) {
      const item = queue[i] as Queued<J>;
      const fits = wave.length === 0 || rows + item.job.rows <= options.maxWaveRows;
      if (item.job.key === head.job.key && fits) {
        wave.push(item);
        rows += item.job.rows;
        queue.splice(i, 1);
      } else {
        i++;
      }
    }
    reportDepth();
    return wave;
  };

  const runOne = async (wave: Queued<J>[]): Promise<void> => {
    const controller = new AbortController();
    const onAbort = (): void => {
      if (wave.every((q) => q.job.signal.aborted)) controller.abort(new CancelledError('every caller of the wave cancelled'));
    };
    for (const q of wave) {
      q.detach();
      q.job.signal.addEventListener('abort', onAbort, { once: true });
    }
    onAbort();
    try {
      await options.runWave(
        wave.map((q) => q.job),
        controller.signal,
      );
      for (const q of wave) {
        if (q.job.signal.aborted) q.reject(abortReason(q.job.signal));
        else q.resolve();
      }
    } catch (err) {
      for (const q of wave) q.reject(q.job.signal.aborted ? abortReason(q.job.signal) : err);
    } finally {
      for (const q of wave) q.job.signal.removeEventListener('abort', onAbort);
    }
  };

  const pump = (): void => {
    while (running.size < options.concurrency && queue.length > 0) {
      const wave = takeWave();
      const done: Promise<void> = runOne(wave).finally(() => {
        running.delete(done);
        pump();
      });
      running.add(done);
    }
  };

  return {
    submit(job) {
      if (closed) return Promise.reject(new UnavailableError('the scheduler is shutting down'));
      if (job.signal.aborted) return Promise.reject(abortReason(job.signal));
      if (queue.length >= options.maxQueue) {
        return Promise.reject(new ResourceExhaustedError(`the request queue is full (${options.maxQueue} waiting); retry later`));
      }
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const at = queue.indexOf(item);
          if (at < 0) return;
          queue.splice(at, 1);
          reportDepth();
          reject(abortReason(job.signal));
        };
        const item: Queued<J> = { job, resolve, reject, detach: () => job.signal.removeEventListener('abort', onAbort) };
        job.signal.addEventListener('abort', onAbort, { once: true });
        queue.push(item);
        reportDepth();
        pump();
      });
    },
    depth: () => queue.length,
    async close() {
      closed = true;
      for (const item of queue.splice(0)) {
        item.detach();
        item.reject(new UnavailableError('the server is shutting down'));
      }
      reportDepth();
      await Promise.allSettled(running);
    },
  };
}
