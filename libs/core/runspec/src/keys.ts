import { assertValidRunId } from '@mstar/contracts';

/** Run-store key of a run's record (a `runV1.Run`): `runs.<runId>`. */
export function runRecordKey(runId: string): string {
  assertValidRunId(runId);
  return `runs.${runId}`;
}

/** The run-store prefix selecting every run record. */
export const RUN_RECORDS_PREFIX = 'runs';

/** Artifact-store keys of one run's outputs (docs/loop.md). A stage is complete once its `COMPLETE` marker exists. */
export function runArtifacts(runId: string) {
  assertValidRunId(runId);
  const root = `runs/${runId}`;
  return {
    root,
    policyCheckpoint: (version: number): string => `${root}/checkpoints/policy/v${version}`,
    prmCheckpoint: (version: number): string => `${root}/checkpoints/prm/v${version}`,
    prmData: `${root}/prm-data.jsonl`,
    dataset: (iteration: number): string => `${root}/datasets/iteration-${iteration}.jsonl`,
    /** The marker written last inside a checkpoint prefix, or next to a file (`<file>.COMPLETE`). */
    complete: (keyOrPrefix: string): string => (keyOrPrefix.endsWith('.jsonl') ? `${keyOrPrefix}.COMPLETE` : `${keyOrPrefix}/COMPLETE`),
  } as const;
}
