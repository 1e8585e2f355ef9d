import { assertValidRunId, commonV1, type trainerV1 } from '@mstar/contracts';
import { InvalidArgumentError, NotFoundError } from '@mstar/errors';
import { unary } from '@mstar/grpc';
import { findRun } from '@mstar/runs';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { isComplete, kindName, listComplete, protoStage, readMeta, toProto } from './checkpoints.js';
import { statusOf, type RunStatus, type StatusBoard } from './status.js';

export interface TrainerServiceDeps {
  readonly artifacts: ArtifactStore;
  readonly runStore: RunStore;
  readonly status: StatusBoard;
}

/** The status the board holds, or else the one of the run's newest checkpoint (a restarted trainer). */
async function statusFor(deps: TrainerServiceDeps, runId: string): Promise<RunStatus | undefined> {
  const live = deps.status.get(runId);
  if (live !== undefined) return live;
  const stored = await listComplete(deps.artifacts, runId);
  const newest = stored.reduce<(typeof stored)[number] | undefined>((a, b) => (a === undefined || b.createdAt > a.createdAt ? b : a), undefined);
  return newest === undefined ? undefined : statusOf(newest);
}

/** The gRPC handlers of `mstar.trainer.v1.TrainerService`. */
export function createTrainerService(deps: TrainerServiceDeps): trainerV1.TrainerServiceServer {
  return {
    getTrainingStatus: unary(async (req) => {
      assertValidRunId(req.runId, 'run_id');
      const status = await statusFor(deps, req.runId);
      if (status === undefined) throw new NotFoundError(`the trainer has no state for run ${req.runId}`);
      return {
        runId: req.runId,
        stage: protoStage(status.stage),
        iteration: status.iteration,
        training: status.training,
        step: status.step,
        loss: status.loss,
        examplesSeen: status.examplesSeen,
        learningRate: status.learningRate,
        updatedAt: status.updatedAt,
      };
    }),
    listCheckpoints: unary(async (req) => {
      assertValidRunId(req.runId, 'run_id');
      const kind = req.kind === commonV1.CheckpointKind.UNSPECIFIED ? undefined : kindName(req.kind);
      if (req.kind !== commonV1.CheckpointKind.UNSPECIFIED && kind === undefined) {
        throw new InvalidArgumentError(`kind must be POLICY, PRM or UNSPECIFIED (both), got ${commonV1.checkpointKindToJSON(req.kind)}`, { field: 'kind' });
      }
      const stored = await listComplete(deps.artifacts, req.runId);
      if (stored.length === 0 && (await findRun(deps.runStore, req.runId)) === undefined) throw new NotFoundError(`run ${req.runId} does not exist`);
      return { checkpoints: stored.filter((m) => kind === undefined || m.kind === kind).map((m) => toProto(req.runId, m)) };
    }),
    getCheckpoint: unary(async (req) => {
      const { ref } = req;
      if (ref === undefined) throw new InvalidArgumentError('ref is required', { field: 'ref' });
      assertValidRunId(ref.runId, 'ref.run_id');
      const kind = kindName(ref.kind);
      if (kind === undefined) throw new InvalidArgumentError(`ref.kind must be POLICY or PRM, got ${commonV1.checkpointKindToJSON(ref.kind)}`, { field: 'ref.kind' });
      const target = { kind, version: ref.version };
      if (!(await isComplete(deps.artifacts, ref.runId, target))) throw new NotFoundError(`${kind} v${ref.version} of run ${ref.runId} was never published`);
      return { checkpoint: toProto(ref.runId, await readMeta(deps.artifacts, ref.runId, target)) };
    }),
  };
}
