import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runV1, type eventsV1 } from '@mstar/contracts';
import { balancerConfig, fitCancelReason, startBalancer } from '@mstar/balancer';
import { dataCurationConfig, startDataCuration } from '@mstar/data-curation';
import { createInProcessBus } from '@mstar/events';
import { policyInferenceConfig, startPolicyInference } from '@mstar/policy-inference';
import { prmScoringConfig, startPrmScoring } from '@mstar/prm-scoring';
import { parseRunSpec } from '@mstar/runspec';
import { createFsArtifactStore, createInMemoryRunStore } from '@mstar/stores';
import { createLogger, type Logger } from '@mstar/telemetry';
import { startTrainer, trainerConfig } from '@mstar/trainer';
import { connectRunControl } from './control.js';
import { describeEvent } from './describe.js';
import { createProgressBars, type StageProgress } from './progress.js';
import { summaryMarkdown, summaryTable } from './table.js';

export interface LocalRunOptions {
  /** The run spec YAML. */
  readonly specPath: string;
  /** Where artifacts, the log, and the summary go; default runs/<run id>. */
  readonly outDir?: string;
  readonly runId?: string;
  /** Log level of the services' log file (default info). */
  readonly logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Progress bars and event lines (default true). */
  readonly progress?: boolean;
  /**
   * Sees every pipeline event; the first reason it returns cancels the run with that reason (cut to
   * CancelRun's limit, ending in '…').
   */
  readonly stopWhen?: ((event: eventsV1.Event) => string | undefined) | undefined;
}

export interface LocalRunResult {
  readonly run: runV1.Run;
  readonly outDir: string;
  readonly seconds: number;
}

/** A progress callback of any service: whatever it reports, as a bar keyed by service and stage. */
function toBar(service: string, event: object): StageProgress | undefined {
  const e = event as Record<string, unknown>;
  const num = (k: string): number | undefined => {
    const v = e[k];
    return typeof v === 'number' ? v : undefined;
  };
  const done = num('done') ?? num('step');
  const total = num('total') ?? num('totalSteps');
  if (done === undefined || total === undefined) return undefined;
  const stage = [e['stage'], e['phase']].filter((x) => typeof x === 'string').join(' ');
  const iteration = num('iteration');
  const label = `${service} ${stage}${iteration === undefined ? '' : ` #${iteration}`}`.trim();
  return { key: label, label, done, total };
}

const defaultRunId = (name: string): string => `${name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;

/**
 * `npm start`: the five services in this process — in-process event bus, in-memory run store,
 * artifacts in a local folder — each on its own gRPC port, then the run started through the
 * balancer's RunControl API like any other client would, watched to the end.
 */
export async function runLocal(options: LocalRunOptions): Promise<LocalRunResult> {
  const started = performance.now();
  const spec = parseRunSpec(await readFile(options.specPath, 'utf8'), options.specPath);
  const runId = options.runId ?? defaultRunId(spec.name);
  const outDir = resolve(options.outDir ?? join('runs', runId));
  await mkdir(outDir, { recursive: true });
  const logFile = createWriteStream(join(outDir, 'services.log'));
  const logger: Logger = createLogger({ service: 'mstar-local', level: options.logLevel ?? 'info', destination: logFile });
  const bars = options.progress === false ? undefined : createProgressBars();
  const onProgress = (service: string) => (event: object) => {
    const bar = toBar(service, event);
    if (bar !== undefined) bars?.update(bar);
  };
  const log = (line: string): void => (bars === undefined ? console.error(line) : bars.log(line));

  const bus = createInProcessBus({ logger: logger.child({ service: 'event-bus' }) });
  const runStore = createInMemoryRunStore();
  const artifacts = await createFsArtifactStore({ root: join(outDir, 'artifacts') });
  const base = { GRPC_PORT: '0', METRICS_PORT: '0', LOG_LEVEL: options.logLevel ?? 'info' };
  const closers: (() => Promise<void>)[] = [];
  try {
    const policy = await startPolicyInference({
      config: policyInferenceConfig.loadConfig({ ...base, RUN_ID: runId }),
      bus,
      artifacts,
      logger: logger.child({ service: 'policy-inference' }),
    });
    closers.push(() => policy.close());
    const prm = await startPrmScoring({
      config: prmScoringConfig.loadConfig({ ...base, RUN_ID: runId }),
      bus,
      artifacts,
      logger: logger.child({ service: 'prm-scoring' }),
    });
    closers.push(() => prm.close());
    const addresses = { POLICY_ADDRESS: `127.0.0.1:${policy.port}`, PRM_ADDRESS: `127.0.0.1:${prm.port}` };
    const trainer = await startTrainer({
      config: trainerConfig.loadConfig(base),
      bus,
      runStore,
      artifacts,
      logger: logger.child({ service: 'trainer' }),
      onProgress: onProgress('trainer'),
    });
    closers.push(() => trainer.close());
    const curation = await startDataCuration({
      config: dataCurationConfig.loadConfig({ ...base, ...addresses }),
      bus,
      runStore,
      artifacts,
      logger: logger.child({ service: 'data-curation' }),
      onProgress: onProgress('data-curation'),
    });
    closers.push(() => curation.close());
    const balancer = await startBalancer({
      config: balancerConfig.loadConfig({ ...base, ...addresses }),
      bus,
      runStore,
      artifacts,
      logger: logger.child({ service: 'balancer' }),
      onProgress: onProgress('balancer'),
    });
    closers.push(() => balancer.close());

    const control = connectRunControl(`127.0.0.1:${balancer.port}`);
    closers.push(() => Promise.resolve(control.close()));
    log(`mstar: run ${runId} (${spec.name}), artifacts and services.log in ${outDir}`);
    await control.startRun(spec, { runId });
    let final: runV1.Run | undefined;
    let cancelled = false;
    for await (const update of control.watchRun(runId)) {
      if (update.event !== undefined) {
        log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${describeEvent(update.event)}`);
        const reason = cancelled ? undefined : options.stopWhen?.(update.event);
        if (reason !== undefined) {
          cancelled = true;
          await control.cancelRun(runId, fitCancelReason(reason));
        }
      }
      if (update.run !== undefined) final = update.run;
    }
    bars?.stop();
    if (final === undefined) throw new Error(`run ${runId}: the watch ended without a run record`);
    const seconds = (performance.now() - started) / 1000;
    await writeSummary(outDir, final, seconds);
    return { run: final, outDir, seconds };
  } finally {
    bars?.stop();
    for (const close of closers.reverse()) await close().catch((err: unknown) => logger.error({ err }, 'close failed'));
    await artifacts.close();
    await runStore.close();
    await bus.close();
    logFile.end();
  }
}

/** summary.json (the run record as proto JSON) and summary.md (the table) next to the artifacts. */
async function writeSummary(outDir: string, run: runV1.Run, seconds: number): Promise<void> {
  await writeFile(join(outDir, 'summary.json'), `${JSON.stringify({ ...(runV1.Run.toJSON(run) as object), wallSeconds: seconds }, null, 2)}\n`);
  await writeFile(join(outDir, 'summary.md'), `${summaryMarkdown(run.summary)}\n`);
}

/** The end-of-run report: the table, and the change in greedy accuracy over the warm-up policy. */
export function finalReport(run: runV1.Run, seconds: number): string {
  const lines = [summaryTable(run.summary)];
  const first = run.summary[0];
  const last = run.summary.at(-1);
  if (first !== undefined && last !== undefined && last !== first) {
    const delta = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? 'n/a' : `${(100 * (b - a)).toFixed(1)} points`);
    lines.push(
      `greedy accuracy v${first.policy?.version ?? 0} -> v${last.policy?.version ?? 0}: validation ${delta(first.greedyAccuracyValidation, last.greedyAccuracyValidation)}, in-domain test ${delta(first.greedyAccuracyInDomain, last.greedyAccuracyInDomain)}, out-of-domain ${delta(first.greedyAccuracyOutOfDomain, last.greedyAccuracyOutOfDomain)}`,
    );
  }
  lines.push(`run ${run.runId}: ${runV1.runStateToJSON(run.state)}${run.errorMessage === '' ? '' : ` (${run.errorMessage})`} in ${seconds.toFixed(0)} s`);
  return lines.join('\n');
}

