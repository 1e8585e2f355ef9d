import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runV1 } from '@mstar/contracts';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { formatRunSpec, parseRunSpec } from '@mstar/runspec';
import { warmupSettings } from '@mstar/trainer';
import { runIdOf, type Experiment, type RunRow } from './definition.js';
import { copyPolicyV0, exists, isComplete, pruneCheckpoints, readResult, readSelections, runDir, SPEC_FILE, writeResult } from './results.js';

/** What runs one spec: `runLocal` in the command, a fake in tests. */
export type RunFunction = (options: { readonly specPath: string; readonly outDir: string; readonly runId: string }) => Promise<{ readonly run: runV1.Run; readonly seconds: number }>;

export interface ExperimentRunOptions {
  readonly experiment: Experiment;
  /** results/<name> */
  readonly outDir: string;
  readonly seeds: readonly number[];
  /** Only these rows (a warm-up row selects the row it reads); default all. */
  readonly only?: readonly string[] | undefined;
  readonly run: RunFunction;
  /** Progress lines (default: stderr). */
  readonly log?: ((line: string) => void) | undefined;
  /** Delete each completed run's intermediate policy checkpoints. */
  readonly pruneCheckpoints?: boolean | undefined;
  /** Start each run from the policy v0 of a complete run at its seed with the same warm-up settings, when one still holds it. */
  readonly reuseWarmup?: boolean | undefined;
}

export interface ExperimentRunOutcome {
  /** Runs done in this call. */
  readonly ran: number;
  /** Runs that were complete already. */
  readonly skipped: number;
  readonly failed: readonly { readonly row: string; readonly seed: number; readonly error: string }[];
}

export interface PlannedRun {
  readonly row: RunRow;
  readonly seed: number;
  readonly dir: string;
  readonly runId: string;
}

/** The rows `--only` selects, as run rows (a warm-up row brings the row it reads). */
export function selectRunRows(experiment: Experiment, only?: readonly string[]): RunRow[] {
  const names = new Set<string>();
  for (const name of only ?? experiment.rows.map((r) => r.name)) {
    const row = experiment.rows.find((r) => r.name === name);
    if (row === undefined) throw new InvalidArgumentError(`--only: ${name} is not a row of ${experiment.name} (rows: ${experiment.rows.map((r) => r.name).join(', ')})`, { field: 'only' });
    names.add(row.kind === 'warmup' ? row.of : row.name);
  }
  return experiment.rows.filter((r): r is RunRow => r.kind === 'run' && names.has(r.name));
}

/**
 * The runs in the order they are done: seed by seed, every row at a seed before the next seed, so
 * an experiment stopped half-way has a whole table at its first seeds rather than some rows at
 * every seed.
 */
export function planRuns(experiment: Experiment, outDir: string, seeds: readonly number[], only?: readonly string[]): PlannedRun[] {
  const rows = selectRunRows(experiment, only);
  return seeds.flatMap((seed) => rows.map((row) => ({ row, seed, dir: runDir(outDir, row.name, seed), runId: runIdOf(experiment.name, row.name, seed) })));
}

/**
 * Throws when a completed run was made from another spec than the definition now gives: its
 * numbers would be reported under a row they do not belong to.
 */
export async function assertSameSpec(planned: PlannedRun): Promise<void> {
  const stored = (await readResult(planned.dir)).spec;
  if (stored !== formatRunSpec(planned.row.specFor(planned.seed))) {
    throw new FailedPreconditionError(
      `${planned.dir} was run with another spec than row ${planned.row.name} now defines at seed ${planned.seed} (compare its ${SPEC_FILE}); delete that folder to rerun it, or report into another --out`,
    );
  }
}

/**
 * The complete runs of the experiment at the planned run's seed that trained (or took) the v0 it
 * would train: the same `warmupSettings` in the spec that ran. Each with the run that trained it.
 */
async function warmupDonors(experiment: Experiment, outDir: string, planned: PlannedRun): Promise<{ dir: string; runId: string; trainedBy: string }[]> {
  const wanted = JSON.stringify(warmupSettings(planned.row.specFor(planned.seed)));
  const donors: { dir: string; runId: string; trainedBy: string }[] = [];
  for (const row of experiment.rows) {
    const dir = runDir(outDir, row.name, planned.seed);
    if (row.kind !== 'run' || row === planned.row || !(await isComplete(dir))) continue;
    const result = await readResult(dir);
    if (JSON.stringify(warmupSettings(parseRunSpec(result.spec))) === wanted) donors.push({ dir, runId: result.runId, trainedBy: result.warmupFrom ?? result.runId });
  }
  return donors;
}

const hours = (seconds: number): string => (seconds < 5400 ? `${(seconds / 60).toFixed(0)} min` : `${(seconds / 3600).toFixed(1)} h`);
const pct = (x: number | undefined): string => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/**
 * Runs every (row, seed) of the plan in sequence. A complete run (result.json present, same spec)
 * is skipped; a folder without result.json is an interrupted run and is deleted and redone from
 * scratch. A failed run is reported and left for inspection; the others go on, and the next call
 * redoes it. Under `reuseWarmup` a run starts with a copy of the policy v0 of a complete run at its
 * seed with the same warm-up settings (when one still holds it), which its trainer publishes
 * instead of training v0 again; result.json names that run in `warmupFrom`.
 */
export async function runExperiment(options: ExperimentRunOptions): Promise<ExperimentRunOutcome> {
  const log = options.log ?? ((line: string): void => console.error(line));
  const plan = planRuns(options.experiment, options.outDir, options.seeds, options.only);
  const done: PlannedRun[] = [];
  for (const planned of plan) {
    if (await isComplete(planned.dir)) {
      await assertSameSpec(planned);
      done.push(planned);
    }
  }
  const rowCount = new Set(plan.map((p) => p.row.name)).size;
  log(`experiment ${options.experiment.name}: ${plan.length} runs (${rowCount} rows x ${options.seeds.length} seeds), ${done.length} complete, ${plan.length - done.length} to run, into ${options.outDir}`);

  let ran = 0;
  let seconds = 0;
  const failed: { row: string; seed: number; error: string }[] = [];
  for (const [index, planned] of plan.entries()) {
    if (done.includes(planned)) continue;
    const tag = `[${index + 1}/${plan.length}] ${planned.row.name} seed ${planned.seed}`;
    // Only a folder without result.json gets here: what it holds is an interrupted (or failed) run.
    if (await exists(planned.dir)) {
      log(`${tag}: ${planned.dir} holds an unfinished run: deleted, redone from scratch`);
      await rm(planned.dir, { recursive: true, force: true });
    }
    await mkdir(planned.dir, { recursive: true });
    const spec = planned.row.specFor(planned.seed);
    const specPath = join(planned.dir, SPEC_FILE);
    await writeFile(specPath, formatRunSpec(spec));
    let warmupFrom: string | undefined;
    if (options.reuseWarmup === true) {
      for (const donor of await warmupDonors(options.experiment, options.outDir, planned)) {
        const copied = await copyPolicyV0({ artifacts: join(donor.dir, 'artifacts'), runId: donor.runId }, { artifacts: join(planned.dir, 'artifacts'), runId: planned.runId });
        if (copied === 0) continue;
        warmupFrom = donor.trainedBy;
        log(`${tag}: policy v0 copied from ${donor.runId} (the same warm-up settings and seed; trained by ${donor.trainedBy})`);
        break;
      }
    }
    log(`${tag}: running ${planned.runId} in ${planned.dir}`);
    try {
      const { run, seconds: took } = await options.run({ specPath, outDir: planned.dir, runId: planned.runId });
      if (run.state !== runV1.RunState.SUCCEEDED) {
        throw new Error(`run ended ${runV1.runStateToJSON(run.state)}${run.errorMessage === '' ? '' : `: ${run.errorMessage}`}`);
      }
      const artifacts = join(planned.dir, 'artifacts');
      await writeResult(planned.dir, {
        row: planned.row.name,
        seed: planned.seed,
        runId: planned.runId,
        wallSeconds: took,
        spec: formatRunSpec(spec),
        iterations: run.summary,
        selections: await readSelections(artifacts, planned.runId),
        warmupFrom,
      });
      if (options.pruneCheckpoints === true) await pruneCheckpoints(artifacts, run);
      ran++;
      seconds += took;
      const first = run.summary[0];
      const last = run.summary.at(-1);
      const left = plan.length - done.length - ran - failed.length;
      log(
        `${tag}: done in ${took.toFixed(0)} s; in-domain greedy ${pct(first?.greedyAccuracyInDomain)} -> ${pct(last?.greedyAccuracyInDomain)}` +
          (left > 0 ? `; ${left} to go, about ${hours((seconds / ran) * left)} at this session's mean` : ''),
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failed.push({ row: planned.row.name, seed: planned.seed, error: message });
      log(`${tag}: FAILED (${message}); its folder is kept for inspection and the next call redoes it`);
    }
  }
  return { ran, skipped: done.length, failed };
}
