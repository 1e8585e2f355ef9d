import type { Metrics } from '@mstar/telemetry';
import type { TrainerStage } from './checkpoints.js';

/** The service's own Prometheus metrics (the gRPC server adds its per-call ones). */
export interface TrainerMetrics {
  /** One optimizer step; `examples` is the step's batch size. */
  step(stage: TrainerStage, stats: { loss: number; lr: number; tokensPerSecond: number; examples: number }): void;
  /** A stage finished: inputs loaded, trained, checkpoint written. */
  stageDone(stage: TrainerStage, seconds: number): void;
  published(kind: 'policy' | 'prm'): void;
  rejected(kind: string, reason: string): void;
  runFailed(stage: TrainerStage): void;
}

export function createTrainerMetrics(metrics: Metrics): TrainerMetrics {
  const steps = metrics.counter({ name: 'mstar_trainer_steps_total', help: 'Optimizer steps taken', labelNames: ['stage'] });
  const loss = metrics.gauge({ name: 'mstar_trainer_loss', help: 'Training loss of the last step (cross-entropy for the policy, BCE for the PRM)', labelNames: ['stage'] });
  const lr = metrics.gauge({ name: 'mstar_trainer_learning_rate', help: 'Learning rate of the last step', labelNames: ['stage'] });
  const tokens = metrics.gauge({ name: 'mstar_trainer_tokens_per_second', help: 'Real (unpadded) tokens per second of the running stage' });
  const examples = metrics.counter({ name: 'mstar_trainer_examples_total', help: 'Training examples consumed, counting repeats over epochs', labelNames: ['stage'] });
  const stageSeconds = metrics.histogram({
    name: 'mstar_trainer_stage_seconds',
    help: 'Wall time of one training stage (warm-up, PRM, one iteration): inputs, training and checkpoint writing',
    labelNames: ['stage'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
  });
  const checkpoints = metrics.counter({ name: 'mstar_trainer_checkpoints_published_total', help: 'CheckpointPublished events emitted (re-publications included)', labelNames: ['kind'] });
  const rejected = metrics.counter({ name: 'mstar_trainer_events_rejected_total', help: 'Events dead-lettered (undecodable, or failing every attempt)', labelNames: ['kind', 'reason'] });
  const failed = metrics.counter({ name: 'mstar_trainer_runs_failed_total', help: 'Runs marked FAILED by the trainer for bad input', labelNames: ['stage'] });
  return {
    step(stage, stats) {
      steps.inc({ stage });
      loss.set({ stage }, stats.loss);
      lr.set({ stage }, stats.lr);
      tokens.set(stats.tokensPerSecond);
      examples.inc({ stage }, stats.examples);
    },
    stageDone: (stage, seconds) => stageSeconds.observe({ stage }, seconds),
    published: (kind) => checkpoints.inc({ kind }),
    rejected: (kind, reason) => rejected.inc({ kind, reason }),
    runFailed: (stage) => failed.inc({ stage }),
  };
}
