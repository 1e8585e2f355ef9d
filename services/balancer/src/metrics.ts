import { runV1 } from '@mstar/contracts';
import type { RejectionReason } from '@mstar/events';
import type { Metrics } from '@mstar/telemetry';

/** How an evaluation of a policy checkpoint ended. */
export type EvaluationOutcome = 'ok' | 'republished' | 'failed' | 'retried' | 'aborted';

/** The service's own Prometheus metrics (the gRPC server adds its per-call ones). */
export interface BalancerMetrics {
  /** Number of runs per state, over every run record in the store. */
  runsByState(counts: ReadonlyMap<runV1.RunState, number>): void;
  evaluation(outcome: EvaluationOutcome, seconds: number): void;
  temperature(runId: string, temperature: number): void;
  greedyAccuracy(runId: string, split: 'validation' | 'in_domain' | 'out_of_domain', accuracy: number): void;
  /** An event was dead-lettered (undecodable, or its handler kept failing). */
  rejected(reason: RejectionReason): void;
}

const STATES = [runV1.RunState.PENDING, runV1.RunState.RUNNING, runV1.RunState.SUCCEEDED, runV1.RunState.FAILED, runV1.RunState.CANCELLED];

export function createBalancerMetrics(metrics: Metrics): BalancerMetrics {
  const runs = metrics.gauge({ name: 'mstar_balancer_runs', help: 'Run records by state', labelNames: ['state'] });
  const evaluations = metrics.counter({ name: 'mstar_balancer_evaluations_total', help: 'Policy checkpoint evaluations by outcome', labelNames: ['outcome'] });
  const seconds = metrics.histogram({
    name: 'mstar_balancer_evaluation_seconds',
    help: 'Duration of one policy checkpoint evaluation (validation, sweep and test splits)',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200],
  });
  const temperature = metrics.gauge({ name: 'mstar_balancer_temperature', help: 'Sampling temperature selected for the run\'s current iteration', labelNames: ['run'] });
  const greedy = metrics.gauge({ name: 'mstar_balancer_greedy_accuracy', help: 'Greedy accuracy of the run\'s last evaluated policy', labelNames: ['run', 'split'] });
  const rejected = metrics.counter({ name: 'mstar_balancer_events_rejected_total', help: 'Events dead-lettered by the balancer\'s consumers', labelNames: ['reason'] });
  return {
    runsByState(counts) {
      for (const state of STATES) runs.set({ state: runV1.runStateToJSON(state) }, counts.get(state) ?? 0);
    },
    evaluation(outcome, s) {
      evaluations.inc({ outcome });
      if (outcome === 'ok') seconds.observe(s);
    },
    temperature: (run, t) => temperature.set({ run }, t),
    greedyAccuracy: (run, split, accuracy) => greedy.set({ run, split }, accuracy),
    rejected: (reason) => rejected.inc({ reason }),
  };
}
