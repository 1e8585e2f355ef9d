import { runV1 } from '@mstar/contracts';
import { AlreadyExistsError, NotFoundError } from '@mstar/errors';
import { runRecordKey } from '@mstar/runspec';
import { KeyExistsError, RevisionConflictError, type RunStore } from '@mstar/stores';

/** True for the states a run never leaves. */
export function isTerminal(state: runV1.RunState): boolean {
  return state === runV1.RunState.SUCCEEDED || state === runV1.RunState.FAILED || state === runV1.RunState.CANCELLED;
}

function decode(runId: string, value: Uint8Array): runV1.Run {
  try {
    return runV1.Run.decode(value);
  } catch (cause) {
    throw new NotFoundError(`run ${runId}: its stored record cannot be decoded`, { cause });
  }
}

/** The run record, or undefined when there is none. */
export async function findRun(store: RunStore, runId: string): Promise<runV1.Run | undefined> {
  const entry = await store.get(runRecordKey(runId));
  return entry === undefined ? undefined : decode(runId, entry.value);
}

/** The run record; NotFoundError when the run does not exist. */
export async function getRun(store: RunStore, runId: string): Promise<runV1.Run> {
  const run = await findRun(store, runId);
  if (run === undefined) throw new NotFoundError(`run ${runId} does not exist`);
  return run;
}

/** Stores a new run record; AlreadyExistsError when the id is taken. */
export async function createRun(store: RunStore, run: runV1.Run): Promise<runV1.Run> {
  try {
    await store.create(runRecordKey(run.runId), runV1.Run.encode(run).finish());
    return run;
  } catch (error) {
    if (error instanceof KeyExistsError) throw new AlreadyExistsError(`run ${run.runId} already exists`, { cause: error });
    throw error;
  }
}

/**
 * Read-modify-write of a run record with compare-and-set, retried when another writer got in
 * between (the mutation must be a pure function of the record it is given). Returns the record
 * written; `mutate` returning the same object unchanged writes nothing.
 */
export async function updateRun(store: RunStore, runId: string, mutate: (run: runV1.Run) => runV1.Run): Promise<runV1.Run> {
  const key = runRecordKey(runId);
  for (;;) {
    const entry = await store.get(key);
    if (entry === undefined) throw new NotFoundError(`run ${runId} does not exist`);
    const current = decode(runId, entry.value);
    const next = mutate(current);
    if (next === current) return current;
    try {
      await store.update(key, runV1.Run.encode(next).finish(), entry.revision);
      return next;
    } catch (error) {
      if (!(error instanceof RevisionConflictError)) throw error;
    }
  }
}

/**
 * An AbortSignal that aborts when the run's record turns CANCELLED or FAILED (or is deleted), or
 * when `parent` aborts. Work of a run passes it down so cancelling stops it mid-stage. `close()`
 * stops watching.
 */
export function runAbortSignal(store: RunStore, runId: string, parent?: AbortSignal): { signal: AbortSignal; close(): void } {
  const controller = new AbortController();
  const stopWatch = new AbortController();
  const onParent = (): void => controller.abort(parent?.reason);
  if (parent?.aborted === true) onParent();
  parent?.addEventListener('abort', onParent, { once: true });
  void (async () => {
    for await (const change of store.watch({ key: runRecordKey(runId) }, { signal: stopWatch.signal })) {
      const state = change.value === undefined ? undefined : runV1.Run.decode(change.value).state;
      if (state === undefined || state === runV1.RunState.CANCELLED || state === runV1.RunState.FAILED) {
        controller.abort(new Error(`run ${runId} is ${state === undefined ? 'gone' : runV1.runStateToJSON(state)}`));
        return;
      }
    }
  })().catch((error: unknown) => {
    if (!stopWatch.signal.aborted) controller.abort(error);
  });
  return {
    signal: controller.signal,
    close: () => {
      parent?.removeEventListener('abort', onParent);
      stopWatch.abort();
    },
  };
}
