import { runV1, type commonV1 } from '@mstar/contracts';
import { FailedPreconditionError } from '@mstar/errors';
import { isTerminal, updateRun } from '@mstar/runs';
import { validateRunSpec, type ResolvedRunSpec } from '@mstar/runspec';
import type { RunStore } from '@mstar/stores';

/** The spec of a stored run (validated when the run was started, so this only re-types it). */
export function specOf(run: runV1.Run): ResolvedRunSpec {
  if (run.spec === undefined) throw new FailedPreconditionError(`run ${run.runId} has no spec`);
  return validateRunSpec(run.spec);
}

/**
 * Moves a running run forward to `stage` (and `iteration`); never backwards, so a redelivered old
 * event changes nothing, and never on a run that has ended.
 */
export async function advanceStage(store: RunStore, runId: string, stage: commonV1.Stage, iteration = 0, now = (): Date => new Date()): Promise<runV1.Run> {
  return updateRun(store, runId, (run) => {
    if (isTerminal(run.state) || (run.stage >= stage && run.iteration >= iteration)) return run;
    return { ...run, stage: Math.max(run.stage, stage), iteration: Math.max(run.iteration, iteration), updatedAt: now() };
  });
}

/** Marks a run FAILED; returns the record when this call ended it, undefined when it had ended already. */
export async function failRun(store: RunStore, runId: string, message: string, now = (): Date => new Date()): Promise<runV1.Run | undefined> {
  let failed = false;
  const run = await updateRun(store, runId, (current) => {
    failed = !isTerminal(current.state);
    if (!failed) return current;
    const at = now();
    return { ...current, state: runV1.RunState.FAILED, errorMessage: message, finishedAt: at, updatedAt: at };
  });
  return failed ? run : undefined;
}
