import type { Logger } from '@mstar/telemetry';
import type { CurationStage } from './metrics.js';

/** Progress of one long stage, for the launcher's progress bars. */
export interface CurationProgress {
  readonly runId: string;
  readonly stage: CurationStage;
  /** The iteration whose dataset is built; 0 for the PRM data. */
  readonly iteration: number;
  /** Prompts finished (sampled, verified, and rolled out or scored). */
  readonly done: number;
  readonly total: number;
  /** Remaining time, extrapolated from the speed so far; 0 when done. */
  readonly etaMs: number;
}

/** How often progress is logged; the callback hears every step. */
export const PROGRESS_LOG_INTERVAL_MS = 10_000;

/**
 * Reports a stage's progress: every step to `onProgress`, and to the log at most every
 * PROGRESS_LOG_INTERVAL_MS (plus the first and last step), so a long stage is visible in the logs
 * without flooding them.
 */
export function progressReporter(
  base: { runId: string; stage: CurationStage; iteration: number; total: number },
  logger: Logger,
  onProgress: ((event: CurationProgress) => void) | undefined,
  now: () => number = () => performance.now(),
): (done: number) => void {
  const started = now();
  let lastLog = -Infinity;
  return (done) => {
    const elapsed = now() - started;
    const etaMs = done >= base.total || done === 0 ? 0 : Math.round((elapsed / done) * (base.total - done));
    const event: CurationProgress = { ...base, done, etaMs };
    onProgress?.(event);
    if (done === 0 || done >= base.total || now() - lastLog >= PROGRESS_LOG_INTERVAL_MS) {
      lastLog = now();
      logger.info({ ...event, elapsedMs: Math.round(elapsed) }, 'curation progress');
    }
  };
}
