import type { SftProgress } from '@mstar/recipes';
import type { CheckpointMeta, TrainerStage } from './checkpoints.js';

/** What the trainer is doing for one run (GetTrainingStatus). */
export interface RunStatus {
  readonly stage: TrainerStage;
  /** 1-based self-evolving iteration; 0 for the warm-up and the PRM. */
  readonly iteration: number;
  readonly training: boolean;
  /** The optimizer's step count (it runs on across iterations under CONTINUOUS). */
  readonly step: number;
  readonly loss: number;
  readonly examplesSeen: number;
  readonly learningRate: number;
  readonly updatedAt: Date;
}

/** The status of a finished checkpoint, for runs this process has not trained since it started. */
export function statusOf(meta: CheckpointMeta): RunStatus {
  return {
    stage: meta.stage,
    iteration: meta.iteration,
    training: false,
    step: meta.optimizerStep,
    loss: meta.loss,
    examplesSeen: meta.examplesSeen,
    learningRate: meta.learningRate,
    updatedAt: meta.createdAt,
  };
}

/** The live status of every run this process has trained. */
export interface StatusBoard {
  begin(runId: string, stage: TrainerStage, iteration: number): void;
  progress(runId: string, event: SftProgress): void;
  /** Training stopped: with the checkpoint written, the status becomes that checkpoint's; without, it only stops. */
  end(runId: string, meta?: CheckpointMeta): void;
  get(runId: string): RunStatus | undefined;
}

export function createStatusBoard(now: () => Date = () => new Date()): StatusBoard {
  const runs = new Map<string, RunStatus>();
  const patch = (runId: string, change: Partial<RunStatus>): void => {
    const current = runs.get(runId);
    if (current !== undefined) runs.set(runId, { ...current, ...change, updatedAt: now() });
  };
  return {
    begin(runId, stage, iteration) {
      runs.set(runId, { stage, iteration, training: true, step: 0, loss: 0, examplesSeen: 0, learningRate: 0, updatedAt: now() });
    },
    progress(runId, event) {
      patch(runId, { step: event.optimizerStep, loss: event.loss, examplesSeen: event.examplesSeen, learningRate: event.lr });
    },
    end(runId, meta) {
      if (meta !== undefined) runs.set(runId, { ...statusOf(meta), updatedAt: now() });
      else patch(runId, { training: false });
    },
    get: (runId) => runs.get(runId),
  };
}
