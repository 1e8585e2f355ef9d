import { runV1 } from '@mstar/contracts';
import { describeError } from '@mstar/errors';
import { findRun, isTerminal } from '@mstar/runs';
import { RUN_RECORDS_PREFIX } from '@mstar/runspec';
import type { RunStore } from '@mstar/stores';
import type { Logger } from '@mstar/telemetry';

export interface RunTrackerOptions {
  readonly runStore: RunStore;
  readonly logger: Logger;
  /** Number of runs per state, after every change. */
  readonly onCounts: (counts: ReadonlyMap<runV1.RunState, number>) => void;
  /** A run seen running has FAILED (whichever service's stage failed it). */
  readonly onFailed: (run: runV1.Run) => Promise<void>;
  /** Pause before watching again after the watch broke; default 1 s. */
  readonly retryMs?: number;
}

export interface RunTracker {
  close(): Promise<void>;
}

const runIdOf = (key: string): string => key.slice(RUN_RECORDS_PREFIX.length + 1);

/**
 * Follows every run record: keeps the runs-by-state counts and reports runs that fail while it
 * watches. The balancer emits RunFinished(FAILED) from that report, so a run failed by another
 * service's stage (which only updates the record) is announced too. (Success and cancellation
 * are the balancer's own doing; it announces them after the events that precede them.)
 */
export async function startRunTracker(options: RunTrackerOptions): Promise<RunTracker> {
  const { runStore, logger } = options;
  const states = new Map<string, runV1.RunState>();
  for (const key of await runStore.keys(RUN_RECORDS_PREFIX)) {
    const run = await findRun(runStore, runIdOf(key));
    if (run !== undefined) states.set(run.runId, run.state);
  }
  const counts = (): Map<runV1.RunState, number> => {
    const out = new Map<runV1.RunState, number>();
    for (const state of states.values()) out.set(state, (out.get(state) ?? 0) + 1);
    return out;
  };
  options.onCounts(counts());

  const stop = new AbortController();
  const watchOnce = async (): Promise<void> => {
    for await (const change of runStore.watch({ prefix: RUN_RECORDS_PREFIX }, { signal: stop.signal })) {
      const runId = runIdOf(change.key);
      if (change.value === undefined) {
        states.delete(runId);
      } else {
        const run = runV1.Run.decode(change.value);
        const before = states.get(runId);
        states.set(runId, run.state);
        if (before !== undefined && !isTerminal(before) && run.state === runV1.RunState.FAILED) {
          await options.onFailed(run).catch((error: unknown) => logger.error({ runId, err: describeError(error) }, 'announcing the end of a run failed'));
        }
      }
      options.onCounts(counts());
    }
  };
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        await watchOnce();
      } catch (error) {
        if (stop.signal.aborted) return;
        logger.warn({ err: describeError(error) }, 'run store watch broke; watching again');
      }
      if (!stop.signal.aborted) await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 1000));
    }
  })();
  return {
    async close() {
      stop.abort();
      await loop;
    },
  };
}
