import { commonV1, type EventPayload } from '@mstar/contracts';
import { runArtifacts } from '@mstar/runspec';

/**
 * A `checkpointPublished` payload as the trainer publishes it: a policy checkpoint's iteration is
 * its version and a PRM's is 0, the artifact prefix is the run's
 * (`runs/<run>/checkpoints/<kind>/v<version>`), no examples, no optimizer step, no parent. `fields`
 * replaces any of these.
 */
export function checkpointPublished(
  runId: string,
  kind: commonV1.CheckpointKind,
  version: number,
  fields: Partial<Omit<commonV1.Checkpoint, 'ref'>> = {},
): EventPayload {
  const keys = runArtifacts(runId);
  const policy = kind === commonV1.CheckpointKind.POLICY;
  return {
    $case: 'checkpointPublished',
    value: {
      checkpoint: {
        ref: { runId, kind, version },
        iteration: policy ? version : 0,
        artifactPrefix: policy ? keys.policyCheckpoint(version) : keys.prmCheckpoint(version),
        createdAt: new Date(),
        trainingExamples: 0,
        parent: undefined,
        optimizerStep: 0,
        ...fields,
      },
    },
  };
}
