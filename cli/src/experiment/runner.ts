import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runV1, type eventsV1 } from '@mstar/contracts';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { formatRunSpec, parseRunSpec } from '@mstar/runspec';
import { warmupSettings } from '@mstar/trainer';
import { runIdOf, type Experiment, type RunRow } from './definition.js';
import { currentPlatform, describePlatform, type Platform } from './platform.js';
import { copyPolicyV0, exists, isComplete, pruneCheckpoints, readResult, readSelections, runDir, SPEC_FILE, writeResult, type RunResult } from './results.js';

/**
 * What runs one spec: `runLocal` in the command, a fake in tests. It passes every pipeline event to
 * `stopWhen`, and cancels the run with the first reason that returns.
 */
export type RunFunction = (options: {
  readonly specPath: string;
  readonly outDir: string;
  readonly runId: string;
  readonly stopWhen?: ((event: eventsV1.Event) => string | undefined) | undefined;
}) => Promise<{ readonly run: runV1.Run; readonly seconds: number }>;

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
  /** The machine the runs run on (default: this one's). */
  readonly platform?: Platform | undefined;
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
 * would train: the same `warmupSettings` in the spec that ran. Each with its result.
 */
async function sameWarmupRuns(experiment: Experiment, outDir: string, planned: PlannedRun): Promise<{ dir: string; result: RunResult }[]> {
  const wanted = JSON.stringify(warmupSettings(planned.row.specFor(planned.seed)));
  const runs: { dir: string; result: RunResult }[] = [];
  for (const row of experiment.rows) {
    const dir = runDir(outDir, row.name, planned.seed);
    if (row.kind !== 'run' || row === planned.row || !(await isComplete(dir))) continue;
    const result = await readResult(dir);
    if (JSON.stringify(warmupSettings(parseRunSpec(result.spec))) === wanted) runs.push({ dir, result });
  }
  return runs;
}

/** The greedy accuracies that tell one v0 from another: decoded without sampling, so equal for the same weights. */
const V0_GREEDY = [
  ['greedyAccuracyValidation', 'validation'],
  ['greedyAccuracyInDomain', 'in-domain'],
  ['greedyAccuracyOutOfDomain', 'out-of-domain'],
] as const;

/**
 * A `stopWhen` for a run that trains its own v0 where `twin`, a complete run at its seed with the
 * same warm-up settings, trained (or took) one already: the two must start from one policy, as
 * every row at a seed does. At v0's evaluation it compares the greedy accuracies, and when they
 * differ it stops the run there (a tally-worked-few row 20 minutes in, not an hour) with the
 * reason: a machine whose CPU kernels sum in another order trains another v0 from the same spec
 * and seed.
 */
function sameV0As(twin: RunResult, here: Platform): (event: eventsV1.Event) => string | undefined {
  const expected = twin.iterations[0];
  return (event) => {
    const p = event.payload;
    const got = p?.$case === 'iterationEvaluated' ? p.value.stats : undefined;
    if (expected === undefined || got === undefined || got.iteration !== 0) return undefined;
    const differ = V0_GREEDY.filter(([key]) => got[key] !== expected[key]);
    if (differ.length === 0) return undefined;
    const there =
      twin.platform === undefined
        ? "; that run's machine is not recorded"
        : describePlatform(twin.platform) === describePlatform(here)
          ? ', as that run was'
          : `; that run ran on ${describePlatform(twin.platform)}`;
    return (
      `policy v0 is not the v0 of ${twin.runId}, a complete run at this seed with the same warm-up settings ` +
      `(greedy ${differ.map(([key, label]) => `${label} ${pct(got[key])} against ${pct(expected[key])}`).join(', ')}): ` +
      `trained here, on ${describePlatform(here)}${there}. Stopped so that the row does not join runs that started from another policy: ` +
      `run it on a machine that trains that v0, or with --reuse-warmup where that v0 is kept, or into another --out`
    );
  };
}

const hours = (seconds: number): string => (seconds < 5400 ? `${(seconds / 60).toFixed(0)} min` : `${(seconds / 3600).toFixed(1)} h`);
const pct = (x: number | undefined): string => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/**
 * Runs every (row, seed) of the plan in sequence. A complete run (result.json present, same spec)
 * is skipped; a folder without result.json is an interrupted run and is deleted and redone from
 * scratch. A failed run is reported and left for inspection; the others go on, and the next call
 * redoes it. Under `reuseWarmup` a run starts with a copy of the policy v0 of a complete run at its
 * seed with the same warm-up settings (when one still holds it), which its trainer publishes
 * instead of training v0 again; result.json names that run in `warmupFrom`. A run that trains its
 * own v0 where such a run exists is stopped at v0's evaluation unless it trained the same v0
 * (`sameV0As`). result.json records the machine (`platform`).
 */
export async function runExperiment(options: ExperimentRunOptions): Promise<ExperimentRunOutcome> {
  const log = options.log ?? ((line: string): void => console.error(line));
  const platform = options.platform ?? currentPlatform();
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
    const twins = await sameWarmupRuns(options.experiment, options.outDir, planned);
    let warmupFrom: string | undefined;
    if (options.reuseWarmup === true) {
      for (const { dir, result: donor } of twins) {
        const copied = await copyPolicyV0({ artifacts: join(dir, 'artifacts'), runId: donor.runId }, { artifacts: join(planned.dir, 'artifacts'), runId: planned.runId });
        if (copied === 0) continue;
        warmupFrom = donor.warmupFrom ?? donor.runId;
        log(`${tag}: policy v0 copied from ${donor.runId} (the same warm-up settings and seed; trained by ${warmupFrom})`);
        break;
      }
    }
    const twin = warmupFrom === undefined ? twins[0]?.result : undefined;
    const check = twin === undefined ? undefined : sameV0As(twin, platform);
    let stopped: string | undefined;
    const stopWhen = check === undefined ? undefined : (event: eventsV1.Event): string | undefined => (stopped ??= check(event));
    log(`${tag}: running ${planned.runId} in ${planned.dir}`);
    try {
      const { run, seconds: took } = await options.run({ specPath, outDir: planned.dir, runId: planned.runId, stopWhen });
      if (run.state !== runV1.RunState.SUCCEEDED) {
        const why = stopped ?? run.errorMessage;
        throw new Error(`run ended ${runV1.runStateToJSON(run.state)}${why === '' ? '' : `: ${why}`}`);
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
        platform,
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
