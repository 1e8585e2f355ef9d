import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { ModelNotLoadedError, PoolClosedError, PoolUnavailableError, WorkerCrashedError, reviveError } from './errors.js';
import { stderrLogger } from './logger.js';
import type { Logger } from './logger.js';
import { validateRequest } from './metadata.js';
import { forTransfer } from './protocol.js';
import type { LoadResult, WorkerMessage, WorkerRequest, WorkerSessionOptions } from './protocol.js';
import type { Device, GraphOptimizationLevel } from './session.js';
import type { Feeds, Outputs } from './tensor.js';

// Compiled, the worker is plain `worker.js` beside this file. Run from TypeScript sources (vitest,
// tsx), it is `worker.ts`, and `--import tsx` in a worker's execArgv does not reach the worker entry
// on Node 20, so a one-line eval bootstrap registers tsx in the worker and then imports the entry.
function workerEntry(): { script: string | URL; options: WorkerOptions } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./worker.js', import.meta.url), options: {} };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return { script: code, options: { eval: true } };
}

// A worker that keeps dying (bad native library, model that crashes ORT) must not respawn forever.
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

export interface SessionPoolOptions {
  /** Worker threads, each holding its own session for every loaded model. */
  workers: number;
  device: Device;
  /** ONNX Runtime intra-op threads per worker; workers x threads should not exceed the cores. */
  intraOpThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  logger?: Logger;
  /** Starts a worker thread; injectable so tests can reach the Worker objects. */
  spawn?: (script: string | URL, options: WorkerOptions) => Worker;
}

export interface RunOptions {
  /**
   * Copy the feeds to the worker instead of transferring them. By default every feed whose array
   * spans its whole ArrayBuffer is transferred and that array is DETACHED (length 0) by the time
   * `run` returns (if the model is still loading: once it has loaded); arrays that are views into
   * larger buffers are copied, never detached.
   */
  copy?: boolean;
}

export interface LoadedModel extends LoadResult {
  readonly key: string;
}

export interface SessionPool {
  readonly size: number;
  /** Loads (or replaces) a model under `key` on every worker. */
  load(key: string, model: Uint8Array | string): Promise<LoadedModel>;
  /** Validates on this thread, then runs on the least busy worker; resolves with the outputs (transferred, not copied). */
  run(key: string, feeds: Feeds, outputNames?: readonly string[], options?: RunOptions): Promise<Outputs>;
  unload(key: string): Promise<void>;
  /** Stops taking requests, waits for those in flight, then ends the workers. */
  close(): Promise<void>;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Registered {
  model: Uint8Array | string;
  loaded: Promise<LoadedModel>;
  /** Set once loaded, so runs can validate and transfer synchronously, inside the `run` call. */
  info?: LoadedModel;
}

class Slot {
  worker!: Worker;
  readonly pending = new Map<number, Pending>();
  readonly restarts: number[] = [];
  retired = false;
  lastError: unknown;
}

export function createSessionPool(options: SessionPoolOptions): SessionPool {
  if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${options.workers}`);
  const logger = options.logger ?? stderrLogger;
  const spawn = options.spawn ?? ((script, workerOptions) => new Worker(script, workerOptions));
  const sessionOptions: WorkerSessionOptions = { device: options.device };
  if (options.intraOpThreads !== undefined) sessionOptions.intraOpThreads = options.intraOpThreads;
  if (options.graphOptimizationLevel !== undefined) sessionOptions.graphOptimizationLevel = options.graphOptimizationLevel;

  const entry = workerEntry();
  const models = new Map<string, Registered>();
  const slots: Slot[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let nextId = 1;
  let closing = false;
  let cursor = 0;

  function send(slot: Slot, request: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<unknown> {
    return new Promise((resolve, reject) => {
      slot.pending.set(request.id, { resolve, reject });
      // Idle workers are unreferenced so a forgotten pool does not keep the process alive.
      slot.worker.ref();
      slot.worker.postMessage(request, transfer);
    });
  }

  /** Counts a public call as in flight from its first line, so `close` waits for it even before it reaches a worker. */
  function track<T>(operation: () => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(new PoolClosedError());
    const promise = operation();
    inFlight.add(promise);
    const settle = (): void => void inFlight.delete(promise);
    promise.then(settle, settle);
    return promise;
  }

  function start(slot: Slot, index: number): void {
    const worker = spawn(entry.script, entry.options);
    slot.worker = worker;
    worker.unref();
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'log') {
        logger[message.level]({ ...message.fields, worker: index }, message.message);
        return;
      }
      const pending = slot.pending.get(message.id);
      if (pending === undefined) return;
      slot.pending.delete(message.id);
      if (slot.pending.size === 0) worker.unref();
      if (message.ok) pending.resolve(message.result);
      else pending.reject(reviveError(message.error));
    });
    worker.on('error', (error) => {
      slot.lastError = error;
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return;
      const crash = new WorkerCrashedError(index, code, { cause: slot.lastError });
      for (const pending of slot.pending.values()) pending.reject(crash);
      slot.pending.clear();
      if (closing) return;
      const now = Date.now();
      slot.restarts.push(now);
      while (slot.restarts.length > 0 && slot.restarts[0]! < now - RESTART_WINDOW_MS) slot.restarts.shift();
      if (slot.restarts.length > MAX_RESTARTS) {
        slot.retired = true;
        logger.warn({ worker: index, exitCode: code, restarts: slot.restarts.length }, 'session worker keeps crashing, retiring it');
        return;
      }
      logger.warn({ worker: index, exitCode: code, error: String(slot.lastError) }, 'session worker crashed, restarting it');
      slot.lastError = undefined;
      start(slot, index);
      // Reloads are posted before any later run, and the worker handles messages in order.
      for (const [key, { model }] of models) {
        send(slot, { id: nextId++, op: 'load', key, model, options: sessionOptions }).catch((error: unknown) =>
          logger.warn({ worker: index, key, error: String(error) }, 'session worker could not reload a model after restart'),
        );
      }
    });
  }

  for (let i = 0; i < options.workers; i++) {
    const slot = new Slot();
    start(slot, i);
    slots.push(slot);
  }

  function live(): Slot[] {
    const alive = slots.filter((s) => !s.retired);
    if (alive.length === 0) throw new PoolUnavailableError();
    return alive;
  }

  function leastBusy(): Slot {
    const alive = live();
    cursor = (cursor + 1) % alive.length;
    let best = alive[cursor]!;
    for (const slot of alive) if (slot.pending.size < best.pending.size) best = slot;
    return best;
  }

  async function broadcast(make: () => WorkerRequest): Promise<unknown[]> {
    return Promise.all(live().map((slot) => send(slot, make())));
  }

  async function unloadEverywhere(key: string): Promise<void> {
    models.delete(key);
    await broadcast(() => ({ id: nextId++, op: 'unload', key }));
  }

  return {
    size: options.workers,

    load(key, model) {
      return track(() => {
        const loaded: Promise<LoadedModel> = broadcast(() => ({ id: nextId++, op: 'load', key, model, options: sessionOptions })).then(
          (results) => {
            const info = { key, ...(results[0] as LoadResult) };
            if (models.get(key) === registered) registered.info = info;
            return info;
          },
          async (error: unknown) => {
            if (models.get(key) === registered) await unloadEverywhere(key).catch(() => undefined);
            throw error;
          },
        );
        const registered: Registered = { model, loaded };
        models.set(key, registered);
        return loaded;
      });
    },

    run(key, feeds, outputNames, runOptions = {}) {
      return track(async () => {
        const registered = models.get(key);
        if (registered === undefined) throw new ModelNotLoadedError(key);
        const info = registered.info ?? (await registered.loaded);
        validateRequest(info, feeds, outputNames);
        const { tensors, transfer } = forTransfer(feeds, runOptions.copy === true);
        const request: WorkerRequest = { id: nextId++, op: 'run', key, feeds: tensors };
        if (outputNames !== undefined) request.outputNames = outputNames;
        return (await send(leastBusy(), request, transfer)) as Outputs;
      });
    },

    unload(key) {
      return track(async () => {
        if (!models.has(key)) throw new ModelNotLoadedError(key);
        await unloadEverywhere(key);
      });
    },

    async close() {
      if (closing) return;
      closing = true;
      await Promise.allSettled(inFlight);
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    },
  };
}
