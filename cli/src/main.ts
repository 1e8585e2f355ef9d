#!/usr/bin/env node
/**
 * The `mstar` command. `npm start` runs `mstar local` (the whole pipeline in one process on the
 * default spec); `mstar run start|get|list|watch|cancel` drive deployed services through the
 * balancer; `mstar eval` measures a served policy; `mstar bench <name>` runs a benchmark;
 * `mstar experiment <name>` runs a set of specs over seeds and reports them (experiments/README.md).
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { runV1 } from '@mstar/contracts';
import { MstarError } from '@mstar/errors';
import { parseRunSpec } from '@mstar/runspec';
import { connectRunControl } from './control.js';
import { describeEvent } from './describe.js';
import { summaryTable } from './table.js';

const DEFAULT_SPEC = fileURLToPath(new URL('../../specs/default.yaml', import.meta.url));
const EXPERIMENTS = fileURLToPath(new URL('../../experiments/', import.meta.url));
const BENCHMARKS = ['train', 'rollout', 'batching', 'prm'] as const;

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CommanderArgumentError(`must be an integer >= 1, got ${value}`);
  return n;
};

const program = new Command('mstar').description('M-STAR self-evolving training for multimodal reasoning models').showHelpAfterError();

program
  .command('local')
  .description('run the whole pipeline in this process: five services, in-process events, local artifacts')
  .option('--spec <file>', 'run spec YAML', DEFAULT_SPEC)
  .option('--out <dir>', 'output folder (default runs/<run id>)')
  .option('--run-id <id>', 'run id (default <spec name>-<timestamp>)')
  .addOption(new Option('--log-level <level>', 'level of services.log').choices(['debug', 'info', 'warn', 'error']).default('info'))
  .option('--no-progress', 'no progress bars or event lines')
  .action(async (opts: { spec: string; out?: string; runId?: string; logLevel: 'info'; progress: boolean }) => {
    // The services (and ONNX Runtime) load only for the commands that run them: run control stays quick.
    const { finalReport, runLocal } = await import('./local.js');
    const result = await runLocal({
      specPath: opts.spec,
      progress: opts.progress,
      logLevel: opts.logLevel,
      ...(opts.out === undefined ? {} : { outDir: opts.out }),
      ...(opts.runId === undefined ? {} : { runId: opts.runId }),
    });
    console.log(finalReport(result.run, result.seconds));
    console.log(`summary: ${result.outDir}/summary.md, ${result.outDir}/summary.json`);
    if (result.run.state !== runV1.RunState.SUCCEEDED) process.exitCode = 1;
  });

program
  .command('experiment <name>')
  .description('run an experiment (experiments/<name>.yaml, or a path to one): every row x seed in sequence, resumable; then its summary, table and figures')
  .option('--seeds <list>', "comma-separated seeds (default: the experiment's, else 1,2,3)")
  .option('--out <dir>', 'results folder (default results/<name>)')
  .option('--only <rows>', 'comma-separated rows to run (a warm-up row runs the row it reads); the report still covers every row')
  .option('--report-only', 'run nothing: rebuild summary.json, sweeps.json, table.md and plots/ from the complete runs')
  .addOption(new Option('--prune-checkpoints', 'delete the intermediate policy checkpoints of each completed run (keeps v0, the last policy, the PRM)').conflicts('reportOnly'))
  .addOption(
    new Option('--reuse-warmup', 'start a run from the policy v0 of a complete run at its seed with the same warm-up settings (in this results folder) instead of training it again').conflicts('reportOnly'),
  )
  .addOption(new Option('--log-level <level>', "level of each run's services.log").choices(['debug', 'info', 'warn', 'error']).default('info'))
  .action(async (name: string, opts: { seeds?: string; out?: string; only?: string; reportOnly?: boolean; pruneCheckpoints?: boolean; reuseWarmup?: boolean; logLevel: 'info' }) => {
    const { experimentName, loadExperiment, parseSeedList, runExperiment, writeReport } = await import('./experiment/index.js');
    const file = /\.ya?ml$/.test(name) ? name : join(EXPERIMENTS, `${name}.yaml`);
    const experiment = await loadExperiment(file);
    const seeds = opts.seeds === undefined ? experiment.seeds : parseSeedList(opts.seeds);
    const outDir = resolve(opts.out ?? join('results', experimentName(file)));
    if (opts.reportOnly !== true) {
      const { runLocal } = await import('./local.js');
      const outcome = await runExperiment({
        experiment,
        outDir,
        seeds,
        only: opts.only?.split(',').map((s) => s.trim()),
        pruneCheckpoints: opts.pruneCheckpoints,
        reuseWarmup: opts.reuseWarmup,
        run: ({ specPath, outDir: dir, runId, stopWhen }) => runLocal({ specPath, outDir: dir, runId, progress: false, logLevel: opts.logLevel, stopWhen }),
      });
      console.error(`experiment ${experiment.name}: ${outcome.ran} runs done now, ${outcome.skipped} complete before, ${outcome.failed.length} failed`);
      if (outcome.failed.length > 0) process.exitCode = 1;
    }
    const report = await writeReport(experiment, outDir, seeds);
    const complete = report.summary.filter((r) => r.kind === 'run').reduce((n, r) => n + r.seeds.length, 0);
    console.log(`${complete} complete runs reported in ${outDir}: ${report.files.join(', ')}`);
  });

const run = program.command('run').description('control runs on deployed services (through the balancer)');
const balancerOption = new Option('--balancer <address>', 'balancer gRPC address').env('MSTAR_BALANCER').default('127.0.0.1:50055');

run
  .command('start')
  .description('start a run from a spec file; prints the run record')
  .addOption(balancerOption)
  .option('--spec <file>', 'run spec YAML', DEFAULT_SPEC)
  .option('--run-id <id>', 'run id (the id the inference services follow: their RUN_ID)')
  .option('--idempotency-key <key>', 'retrying with the same key never starts a second run')
  .option('--watch', 'watch the run to the end')
  .action(async (opts: { balancer: string; spec: string; runId?: string; idempotencyKey?: string; watch?: boolean }) => {
    const spec = parseRunSpec(await readFile(opts.spec, 'utf8'), opts.spec);
    const control = connectRunControl(opts.balancer);
    try {
      const { run: started, created } = await control.startRun(spec, {
        ...(opts.runId === undefined ? {} : { runId: opts.runId }),
        ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
      });
      console.log(`${created ? 'started' : 'already running'}: ${started.runId}`);
      if (opts.watch === true) await watch(control, started.runId);
    } finally {
      control.close();
    }
  });

run
  .command('get <runId>')
  .description('print a run record as JSON')
  .addOption(balancerOption)
  .action(async (runId: string, opts: { balancer: string }) => {
    const control = connectRunControl(opts.balancer);
    try {
      const record = await control.getRun(runId);
      console.log(JSON.stringify(runV1.Run.toJSON(record), null, 2));
    } finally {
      control.close();
    }
  });

run
  .command('list')
  .description('list runs (optionally in one state)')
  .addOption(balancerOption)
  .addOption(new Option('--state <state>', 'only runs in this state').choices(['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']))
  .action(async (opts: { balancer: string; state?: string }) => {
    const control = connectRunControl(opts.balancer);
    try {
      const state = opts.state === undefined ? runV1.RunState.UNSPECIFIED : runV1.runStateFromJSON(`RUN_STATE_${opts.state}`);
      for (const r of await control.listRuns(state)) {
        console.log(`${r.runId}\t${runV1.runStateToJSON(r.state)}\titeration ${r.iteration}\t${r.spec?.name ?? ''}`);
      }
    } finally {
      control.close();
    }
  });

run
  .command('watch <runId>')
  .description('follow a run: one line per event, the table at the end')
  .addOption(balancerOption)
  .action(async (runId: string, opts: { balancer: string }) => {
    const control = connectRunControl(opts.balancer);
    try {
      await watch(control, runId);
    } finally {
      control.close();
    }
  });

run
  .command('cancel <runId>')
  .description('cancel a run')
  .addOption(balancerOption)
  .option('--reason <text>', 'recorded with the cancellation', 'cancelled from the mstar CLI')
  .action(async (runId: string, opts: { balancer: string; reason: string }) => {
    const control = connectRunControl(opts.balancer);
    try {
      const record = await control.cancelRun(runId, opts.reason);
      console.log(`${record.runId}: ${runV1.runStateToJSON(record.state)}`);
    } finally {
      control.close();
    }
  });

program
  .command('eval')
  .description('greedy accuracy and Pass@K of a served policy on a split of the built-in benchmark (last line JSON)')
  .option('--policy <address>', 'policy-inference gRPC address', '127.0.0.1:50051')
  .addOption(new Option('--split <split>', 'split').choices(['validation', 'test', 'test-ood-compose', 'test-ood-style']).default('validation'))
  .option('--size <n>', 'prompts', positiveInt, 250)
  .option('--k <n>', 'samples per prompt for Pass@K (1: greedy only)', positiveInt, 16)
  .option('--temperature <t>', 'sampling temperature', '1.0')
  .option('--world-seed <n>', 'world seed', positiveInt, 1)
  .addOption(new Option('--answer-style <style>', "the world's answer style (the run spec's world.answer_style)").choices(['short', 'worked']).default('short'))
  .action(async (opts: { policy: string; split: 'validation'; size: number; k: number; temperature: string; worldSeed: number; answerStyle: 'short' | 'worked' }) => {
    const { evaluateServed } = await import('./eval.js');
    const result = await evaluateServed({
      address: opts.policy,
      split: opts.split,
      size: opts.size,
      k: opts.k,
      temperature: Number(opts.temperature),
      worldSeed: opts.worldSeed,
      answerStyle: opts.answerStyle,
    });
    console.log(JSON.stringify(result));
  });

program
  .command('bench <name>')
  .description(`run a benchmark (${BENCHMARKS.join(', ')}); its last output line is JSON`)
  .action((name: string) => {
    if (!(BENCHMARKS as readonly string[]).includes(name)) throw new CommanderArgumentError(`unknown benchmark ${name}; one of ${BENCHMARKS.join(', ')}`);
    const result = spawnSync('npm', ['run', `bench:${name}`], { stdio: 'inherit', cwd: fileURLToPath(new URL('../..', import.meta.url)) });
    process.exitCode = result.status ?? 1;
  });

async function watch(control: ReturnType<typeof connectRunControl>, runId: string): Promise<void> {
  let last: runV1.Run | undefined;
  for await (const update of control.watchRun(runId)) {
    if (update.event !== undefined) console.log(describeEvent(update.event));
    if (update.run !== undefined) last = update.run;
  }
  if (last !== undefined) {
    console.log(summaryTable(last.summary));
    console.log(`${last.runId}: ${runV1.runStateToJSON(last.state)}${last.errorMessage === '' ? '' : ` (${last.errorMessage})`}`);
  }
}

try {
  await program.parseAsync();
} catch (error) {
  // Our errors (a bad spec field, a gRPC status) are messages for the user, not stack traces.
  console.error(error instanceof MstarError || (error as { code?: unknown }).code !== undefined ? `mstar: ${(error as Error).message}` : error);
  process.exitCode = 1;
}
