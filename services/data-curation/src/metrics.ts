import type { Metrics } from '@mstar/telemetry';

/** The stage a piece of curation work belongs to: Monte-Carlo PRM data or an iteration's dataset. */
export type CurationStage = 'prm-data' | 'dataset';

/** The service's own Prometheus metrics (the gRPC server adds its per-call ones). */
export interface CurationMetrics {
  /** Samples drawn from the policy (rollouts excluded) and how many of them were correct. */
  samples(stage: CurationStage, generated: number, correct: number): void;
  /** Samples kept in a dataset by the selection rule. */
  kept(count: number): void;
  /** Monte-Carlo continuations sampled to label PRM steps. */
  rollouts(count: number): void;
  /** PRM samples dropped for having no step or no `# Answer`. */
  dropped(count: number): void;
  /** A stage's output was written (COMPLETE marker included). */
  written(stage: CurationStage): void;
  /** A stage's output was found complete and its event re-published. */
  republished(stage: CurationStage): void;
  /** An event that started no work, and why (cancelled run, other checkpoint, ...). */
  ignored(reason: string): void;
  /** An event the bus dead-lettered (undecodable, handler failed on every attempt, ...). */
  rejected(reason: string): void;
  /** A run this service marked FAILED. */
  failedRun(stage: CurationStage): void;
  /** Wall time of one stage run. */
  stageSeconds(stage: CurationStage, seconds: number): void;
}

export function createCurationMetrics(metrics: Metrics): CurationMetrics {
  const samples = metrics.counter({ name: 'mstar_curation_samples_generated_total', help: 'Samples drawn from the policy (rollouts excluded)', labelNames: ['stage'] });
  const correct = metrics.counter({ name: 'mstar_curation_samples_correct_total', help: 'Sampled answers whose final answer matched the gold answer', labelNames: ['stage'] });
  const kept = metrics.counter({ name: 'mstar_curation_samples_kept_total', help: 'Correct samples kept in a dataset by the selection rule' });
  const rollouts = metrics.counter({ name: 'mstar_curation_rollouts_total', help: 'Monte-Carlo continuations sampled for PRM step labels' });
  const dropped = metrics.counter({ name: 'mstar_curation_prm_samples_dropped_total', help: 'PRM samples without a step or a final answer' });
  const written = metrics.counter({ name: 'mstar_curation_outputs_written_total', help: 'Datasets and PRM data files written', labelNames: ['stage'] });
  const republished = metrics.counter({ name: 'mstar_curation_outputs_republished_total', help: 'Complete outputs whose event was published again', labelNames: ['stage'] });
  const ignored = metrics.counter({ name: 'mstar_curation_events_ignored_total', help: 'Events that started no work', labelNames: ['reason'] });
  const rejected = metrics.counter({ name: 'mstar_curation_events_rejected_total', help: 'Events dead-lettered by the bus', labelNames: ['reason'] });
  const failed = metrics.counter({ name: 'mstar_curation_runs_failed_total', help: 'Runs marked FAILED by this service', labelNames: ['stage'] });
  const seconds = metrics.histogram({
    name: 'mstar_curation_stage_seconds',
    help: 'Wall time of one PRM-data or dataset build',
    labelNames: ['stage'],
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800],
  });
  return {
    samples(stage, generated, right) {
      samples.inc({ stage }, generated);
      correct.inc({ stage }, right);
    },
    kept: (count) => kept.inc(count),
    rollouts: (count) => rollouts.inc(count),
    dropped: (count) => dropped.inc(count),
    written: (stage) => written.inc({ stage }),
    republished: (stage) => republished.inc({ stage }),
    ignored: (reason) => ignored.inc({ reason }),
    rejected: (reason) => rejected.inc({ reason }),
    failedRun: (stage) => failed.inc({ stage }),
    stageSeconds: (stage, s) => seconds.observe({ stage }, s),
  };
}
