import { runV1, type commonV1 } from '@mstar/contracts';
import type { Experiment, ExperimentRow } from './definition.js';
import { describePlatform } from './platform.js';
import type { RunResult } from './results.js';

/*
 * Numbers across seeds. Every accuracy is a share in [0, 1] as the run records hold it; the spread
 * is the sample standard deviation (n - 1), null below two seeds.
 */

export interface MeanStd {
  readonly mean: number | null;
  readonly std: number | null;
  /** Values that went in (undefined ones are left out). */
  readonly n: number;
}

export function meanStd(values: readonly (number | undefined)[]): MeanStd {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: null, std: null, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null, n };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

/** The per-policy numbers every row reports, read from an IterationStats row. */
export const METRICS = {
  id_greedy: (s) => s.greedyAccuracyInDomain,
  ood_greedy: (s) => s.greedyAccuracyOutOfDomain,
  val_greedy: (s) => s.greedyAccuracyValidation,
  pass_at_k: (s) => s.passAtK,
  reward_pass_at_k: (s) => s.rewardPassAtK,
  pass_at_k_gap: (s) => s.passAtKGap,
} as const satisfies Record<string, (s: commonV1.IterationStats) => number | undefined>;

export type MetricName = keyof typeof METRICS;
const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
const WARMUP_METRICS = ['id_greedy', 'ood_greedy', 'val_greedy'] as const;
type WarmupMetric = (typeof WARMUP_METRICS)[number];

type Means<K extends string> = { [M in K as `${M}_mean`]: number | null } & { [M in K as `${M}_std`]: number | null };

export type PerSeed = {
  readonly seed: number;
  readonly run_id: string;
  readonly final_iteration: number;
  readonly final_temperature: number;
  readonly wall_seconds: number;
  /** The run that trained the policy v0 this run took (`--reuse-warmup`; wall_seconds then leaves the warm-up out), else null. */
  readonly warmup_from: string | null;
  /** The machine the run ran on (describePlatform), or null for a run from before result.json recorded it. */
  readonly machine: string | null;
} & {
  readonly [M in MetricName]: number | null;
} & { readonly [M in WarmupMetric as `warmup_${M}`]: number | null };

export type PerIteration = { readonly iteration: number; readonly n: number; readonly temperature_mean: number | null; readonly dataset_size_mean: number | null } & Means<MetricName>;

/** One row of results/<name>/summary.json. */
export type RowSummary = {
  readonly row: string;
  readonly description: string;
  /** 'run', or 'warmup': iteration 0 of the row `warmup_of`. */
  readonly kind: ExperimentRow['kind'];
  readonly warmup_of: string | null;
  /** Seeds with a complete run, ascending. */
  readonly seeds: readonly number[];
  /** Requested seeds without one yet. */
  readonly missing_seeds: readonly number[];
  /** The policy the final numbers measure (iterations of the spec; 0 for the warm-up row). */
  readonly final_iteration: number | null;
  /** K of Pass@K and k of Reward-Pass@k. */
  readonly samples_per_prompt: number | null;
  readonly reward_pass_k: number | null;
  /** Final in-domain greedy minus the same seed's warm-up (v0) in-domain greedy. */
  readonly id_greedy_gain_mean: number | null;
  readonly id_greedy_gain_std: number | null;
  readonly wall_seconds_mean: number | null;
  readonly per_seed: readonly PerSeed[];
  readonly per_iteration: readonly PerIteration[];
} & Means<MetricName> &
  Means<`warmup_${WarmupMetric}`>;

/** One temperature of one sweep: results/<name>/sweeps.json is a list of these. */
export interface SweepPoint {
  readonly row: string;
  readonly seed: number;
  /** The iteration whose temperature the sweep chose (it measured policy v(iteration - 1)). */
  readonly iteration: number;
  readonly policy_version: number;
  readonly mode: string;
  readonly chosen_temperature: number;
  readonly greedy_accuracy: number;
  readonly samples_per_prompt: number;
  readonly reward_pass_k: number;
  readonly validation_prompts: number;
  readonly temperature: number;
  readonly pass_at_k: number;
  readonly reward_pass_at_k: number;
  readonly sample_accuracy: number;
}

const value = (x: number | undefined): number | null => (x === undefined ? null : x);

function meansOf<K extends string>(names: readonly K[], values: (name: K) => (number | undefined)[]): Means<K> {
  const out: Record<string, number | null> = {};
  for (const name of names) {
    const { mean, std } = meanStd(values(name));
    out[`${name}_mean`] = mean;
    out[`${name}_std`] = std;
  }
  return out as Means<K>;
}

/** The IterationStats a row reports for one run: the last policy, or v0 for the warm-up row. */
function reported(row: ExperimentRow, result: RunResult): commonV1.IterationStats | undefined {
  return row.kind === 'warmup' ? result.iterations.find((s) => s.iteration === 0) : result.iterations.at(-1);
}

function perSeed(row: ExperimentRow, result: RunResult): PerSeed {
  const final = reported(row, result);
  const warm = result.iterations.find((s) => s.iteration === 0);
  const metrics = Object.fromEntries(METRIC_NAMES.map((m) => [m, final === undefined ? null : value(METRICS[m](final))]));
  const warmup = Object.fromEntries(WARMUP_METRICS.map((m) => [`warmup_${m}`, warm === undefined ? null : value(METRICS[m](warm))]));
  return {
    seed: result.seed,
    run_id: result.runId,
    final_iteration: final?.iteration ?? 0,
    final_temperature: final?.evalTemperature ?? 0,
    wall_seconds: row.kind === 'warmup' ? (warm?.wallSeconds ?? 0) : result.wallSeconds,
    warmup_from: result.warmupFrom ?? null,
    machine: result.platform === undefined ? null : describePlatform(result.platform),
    ...metrics,
    ...warmup,
  } as PerSeed;
}

function perIteration(row: ExperimentRow, results: readonly RunResult[]): PerIteration[] {
  const last = row.kind === 'warmup' ? 0 : Math.max(-1, ...results.flatMap((r) => r.iterations.map((s) => s.iteration)));
  const out: PerIteration[] = [];
  for (let iteration = 0; iteration <= last; iteration++) {
    const stats = results.map((r) => r.iterations.find((s) => s.iteration === iteration)).filter((s) => s !== undefined);
    out.push({
      iteration,
      n: stats.length,
      // Iteration 0 trains on gold answers: it has no sampling temperature and its dataset is the warm-up's.
      temperature_mean: iteration === 0 ? null : meanStd(stats.map((s) => s.temperature)).mean,
      dataset_size_mean: meanStd(stats.map((s) => s.datasetSize)).mean,
      ...meansOf(METRIC_NAMES, (m) => stats.map((s) => METRICS[m](s))),
    });
  }
  return out;
}

/**
 * summary.json's rows, in the definition's order: each row's final numbers as mean and spread
 * over the seeds that completed, the warm-up's, the gain over it paired by seed, and the curves.
 */
export function summarise(experiment: Experiment, results: readonly RunResult[], seeds: readonly number[]): RowSummary[] {
  return experiment.rows.map((row) => {
    const source = row.kind === 'warmup' ? row.of : row.name;
    const runs = results.filter((r) => r.row === source && seeds.includes(r.seed)).sort((a, b) => a.seed - b.seed);
    const seedRows = runs.map((r) => perSeed(row, r));
    const finals = runs.map((r) => reported(row, r));
    const first = finals.find((s) => s !== undefined);
    const gain = meanStd(seedRows.map((s) => (s.id_greedy === null || s.warmup_id_greedy === null ? undefined : s.id_greedy - s.warmup_id_greedy)));
    return {
      row: row.name,
      description: row.description,
      kind: row.kind,
      warmup_of: row.kind === 'warmup' ? row.of : null,
      seeds: runs.map((r) => r.seed),
      missing_seeds: seeds.filter((s) => !runs.some((r) => r.seed === s)),
      final_iteration: first?.iteration ?? null,
      samples_per_prompt: first?.samplesPerPrompt ?? null,
      reward_pass_k: first?.rewardPassK ?? null,
      ...meansOf(METRIC_NAMES, (m) => seedRows.map((s) => s[m] ?? undefined)),
      ...meansOf(
        WARMUP_METRICS.map((m) => `warmup_${m}` as const),
        (m) => seedRows.map((s) => s[m] ?? undefined),
      ),
      id_greedy_gain_mean: gain.mean,
      id_greedy_gain_std: gain.std,
      wall_seconds_mean: meanStd(seedRows.map((s) => s.wall_seconds)).mean,
      per_seed: seedRows,
      per_iteration: perIteration(row, runs),
    };
  });
}

/** Every sweep of every run, one point per grid temperature. */
export function sweepPoints(results: readonly RunResult[]): SweepPoint[] {
  return results.flatMap((r) =>
    r.selections.flatMap((sel) => {
      const sweep = sel.swept ? sel.sweep : undefined;
      if (sweep === undefined) return [];
      return sweep.rows.map((t) => ({
        row: r.row,
        seed: r.seed,
        iteration: sel.iteration,
        policy_version: sweep.policy?.version ?? sel.iteration - 1,
        mode: runV1.temperatureModeToJSON(sel.mode).replace('TEMPERATURE_MODE_', ''),
        chosen_temperature: sel.temperature,
        greedy_accuracy: sweep.greedyAccuracy,
        samples_per_prompt: sweep.samplesPerPrompt,
        reward_pass_k: sweep.rewardPassK,
        validation_prompts: sweep.validationPrompts,
        temperature: t.temperature,
        pass_at_k: t.passAtK,
        reward_pass_at_k: t.rewardPassAtK,
        sample_accuracy: t.sampleAccuracy,
      }));
    }),
  );
}
