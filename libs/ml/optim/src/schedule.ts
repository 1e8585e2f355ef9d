import { OptimizerConfigError } from './errors.js';

/**
 * Learning-rate schedules as plain data, so they serialise with the optimizer state. `step` is the
 * 0-based index of the update about to be applied: warm-up reaches the peak `lr` at step
 * `warmupSteps - 1`, never spending an update at rate 0.
 */
export type LrSchedule =
  | { kind: 'constant'; lr: number }
  | { kind: 'linear-warmup'; lr: number; warmupSteps: number }
  | { kind: 'warmup-cosine'; lr: number; warmupSteps: number; totalSteps: number; minLr: number };

export function validateSchedule(schedule: LrSchedule): LrSchedule {
  const fail = (why: string): never => {
    throw new OptimizerConfigError(`invalid learning-rate schedule ${JSON.stringify(schedule)}: ${why}`);
  };
  if (!Number.isFinite(schedule.lr) || schedule.lr < 0) fail('lr must be a finite number >= 0');
  switch (schedule.kind) {
    case 'constant':
      break;
    case 'linear-warmup':
      if (!Number.isSafeInteger(schedule.warmupSteps) || schedule.warmupSteps < 0) fail('warmupSteps must be an integer >= 0');
      break;
    case 'warmup-cosine':
      if (!Number.isSafeInteger(schedule.warmupSteps) || schedule.warmupSteps < 0) fail('warmupSteps must be an integer >= 0');
      if (!Number.isSafeInteger(schedule.totalSteps) || schedule.totalSteps <= schedule.warmupSteps) fail('totalSteps must be an integer > warmupSteps');
      if (!Number.isFinite(schedule.minLr) || schedule.minLr < 0 || schedule.minLr > schedule.lr) fail('minLr must be within [0, lr]');
      break;
    default:
      fail(`unknown kind ${JSON.stringify((schedule as { kind: unknown }).kind)}`);
  }
  return schedule;
}

/** The learning rate for update number `step` (0-based). Pure: same inputs, same number. */
export function learningRate(schedule: LrSchedule, step: number): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new OptimizerConfigError(`step must be an integer >= 0, got ${step}`);
  switch (schedule.kind) {
    case 'constant':
      return schedule.lr;
    case 'linear-warmup':
      return step < schedule.warmupSteps ? (schedule.lr * (step + 1)) / schedule.warmupSteps : schedule.lr;
    case 'warmup-cosine': {
      const { lr, warmupSteps, totalSteps, minLr } = schedule;
      if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
      const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
      return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
  }
}
