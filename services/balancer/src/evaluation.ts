import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { commonV1, runV1, type eventsV1 } from '@mstar/contracts';
import { describeError, FailedPreconditionError, isMstarError } from '@mstar/errors';
import { deriveSeed } from '@mstar/metrics';
import { remoteSampler, waitForPolicyVersion, type PolicyClient } from '@mstar/policy-inference';
import { prmScorer, type PrmClient } from '@mstar/prm-scoring';
import { evaluate, runItems, type EvalProgress, type EvaluateOptions, type RunSplit } from '@mstar/recipes';
import { findRun, isTerminal, runAbortSignal, updateRun } from '@mstar/runs';
import type { ResolvedRunSpec } from '@mstar/runspec';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import type { Logger } from '@mstar/telemetry';
import { limitConcurrency } from './concurrency.js';
import type { BalancerMetrics } from './metrics.js';
import { runFinishedPayload, type Publish } from './publish.js';
import { readEvaluation, readPolicySeen, writeEvaluation, type EvaluationRecord } from './records.js';
import { advanceStage, failRun, specOf } from './run-record.js';
import { chooseTemperature, temperaturePlan } from './temperature.js';

/** The splits an evaluation measures. */
export type EvaluationSplit = Exclude<RunSplit, 'pool'>;

/** Progress of an evaluation, for progress bars: one phase (greedy or one temperature) of one split at a time. */
export interface BalancerProgress {
  readonly runId: string;
  readonly stage: 'evaluate';
  /** The evaluated policy version (0 = the warm-up policy). */
  readonly iteration: number;
  readonly split: EvaluationSplit;
  readonly phase: 'greedy' | 'sample';
  /** 0 for the greedy phase. */
  readonly temperature: number;
  readonly done: number;
  readonly total: number;
  readonly etaMs: number;
}

export interface EvaluatorDeps {
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly policyClient: PolicyClient;
  readonly prmClient: PrmClient;
  readonly publish: Publish;
  readonly logger: Logger;
  readonly metrics: BalancerMetrics;
  /** How long to wait for policy-inference / prm-scoring to serve the versions needed. */
  readonly versionWaitMs: number;
  /** Prompts per sampling call (rows = this x K); greedy calls carry as many rows. */
  readonly promptsPerCall: number;
  /** ScoreSteps calls in flight at once. */
  readonly scoreConcurrency: number;
  readonly onProgress?: ((event: BalancerProgress) => void) | undefined;
  /** Fires when the service stops: in-flight evaluations end and their events are redelivered later. */
  readonly shutdown: AbortSignal;
  readonly now?: (() => Date) | undefined;
  /** Progress log period; default 10 s. */
  readonly progressLogMs?: number | undefined;
}

/** One evaluation to do: policy `iteration` of a run, triggered by a (possibly redelivered) event. */
export interface EvaluationJob {
  readonly runId: string;
  readonly iteration: number;
  /** Delivery attempt of the triggering event and the bus's limit: the last attempt fails the run instead of retrying. */
  readonly deliveryCount: number;
  readonly maxDeliver: number;
}

const TRANSIENT_CODES = new Set(['UNAVAILABLE', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']);
const TRANSIENT_STATUSES = new Set<number>([Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED, Status.DEADLINE_EXCEEDED]);

/** Failures worth another delivery of the event: an unreachable or overloaded peer or store. */
export function isTransient(error: unknown): boolean {
  if (isMstarError(error)) return TRANSIENT_CODES.has(error.code);
  const code = (error as Partial<ServiceError> | undefined)?.code;
  return typeof code === 'number' && TRANSIENT_STATUSES.has(code);
}

const policyRef = (runId: string, version: number): commonV1.CheckpointRef => ({ runId, kind: commonV1.CheckpointKind.POLICY, version });
const prmRef = (runId: string): commonV1.CheckpointRef => ({ runId, kind: commonV1.CheckpointKind.PRM, version: 0 });

/**
 * Evaluates policy `job.iteration` of a run (docs/loop.md steps 5 and 8) and emits
 * IterationEvaluated, then TemperatureSelected for the next iteration or RunFinished after the
 * last. Idempotent: when the run record already holds the row, the stored evaluation is
 * re-published and nothing is measured. A cancelled run aborts the evaluation; a failure that
 * another delivery cannot fix marks the run FAILED; transient failures throw, so the event is
 * redelivered (until its last delivery, which fails the run).
 */
export async function evaluateIteration(deps: EvaluatorDeps, job: EvaluationJob): Promise<void> {
  const { runId, iteration } = job;
  const log = deps.logger.child({ runId, iteration });
  const run = await findRun(deps.runStore, runId);
  if (run === undefined) {
    log.warn({}, 'checkpoint of an unknown run ignored');
    return;
  }
  const stored = await readEvaluation(deps.artifacts, runId, iteration);
  if (stored !== undefined && run.summary.some((row) => row.iteration === iteration)) {
    await republish(deps, run, stored);
    deps.metrics.evaluation('republished', 0);
    log.info({}, 'evaluation already done; events re-published');
    return;
  }
  if (isTerminal(run.state)) return;

  const started = performance.now();
  const abort = runAbortSignal(deps.runStore, runId, deps.shutdown);
  try {
    const spec = specOf(run);
    if (iteration > spec.iterations) {
      log.warn({ iterations: spec.iterations }, 'checkpoint beyond the last iteration ignored');
      return;
    }
    if (iteration === spec.iterations) await advanceStage(deps.runStore, runId, commonV1.Stage.EVALUATION, iteration, deps.now);
    await waitUntilServed(deps, runId, iteration, abort.signal);
    const record = await measure(deps, run, spec, iteration, abort.signal);
    await writeEvaluation(deps.artifacts, runId, record);
    const updated = await appendRow(deps, runId, spec, record);
    if (updated === undefined) return;
    deps.metrics.greedyAccuracy(runId, 'validation', record.stats.greedyAccuracyValidation);
    if (record.stats.greedyAccuracyInDomain !== undefined) deps.metrics.greedyAccuracy(runId, 'in_domain', record.stats.greedyAccuracyInDomain);
    if (record.stats.greedyAccuracyOutOfDomain !== undefined) deps.metrics.greedyAccuracy(runId, 'out_of_domain', record.stats.greedyAccuracyOutOfDomain);
    if (record.selection !== undefined) deps.metrics.temperature(runId, record.selection.temperature);
    await republish(deps, updated, record);
    deps.metrics.evaluation('ok', (performance.now() - started) / 1000);
    log.info(
      {
        greedy: record.stats.greedyAccuracyValidation,
        passAtK: record.stats.passAtK,
        rewardPassAtK: record.stats.rewardPassAtK,
        nextTemperature: record.selection?.temperature,
        swept: record.selection?.swept,
        seconds: (performance.now() - started) / 1000,
      },
      'policy evaluated',
    );
  } catch (error) {
    if (deps.shutdown.aborted) {
      deps.metrics.evaluation('retried', 0);
      throw error;
    }
    if (abort.signal.aborted) {
      deps.metrics.evaluation('aborted', 0);
      log.info({ reason: describeError(abort.signal.reason) }, 'evaluation stopped: the run ended');
      return;
    }
    if (isTransient(error) && job.deliveryCount < job.maxDeliver) {
      deps.metrics.evaluation('retried', 0);
      log.warn({ err: describeError(error), deliveryCount: job.deliveryCount }, 'evaluation failed; the event will be redelivered');
      throw error;
    }
    deps.metrics.evaluation('failed', 0);
    const message = `evaluating policy v${iteration}: ${describeError(error)}`;
    log.error({ err: describeError(error) }, 'evaluation failed; failing the run');
    const failed = await failRun(deps.runStore, runId, message, deps.now);
    if (failed !== undefined) await deps.publish(runId, runFinishedPayload(failed));
  } finally {
    abort.close();
  }
}

/** IterationEvaluated, then TemperatureSelected or (once the run succeeded) RunFinished. */
async function republish(deps: EvaluatorDeps, run: runV1.Run, record: EvaluationRecord): Promise<void> {
  await deps.publish(run.runId, { $case: 'iterationEvaluated', value: { stats: record.stats } });
  if (record.selection !== undefined) await deps.publish(run.runId, { $case: 'temperatureSelected', value: record.selection });
  else if (run.state === runV1.RunState.SUCCEEDED) await deps.publish(run.runId, runFinishedPayload(run));
}

/** Waits until both inference services serve what the evaluation pins; not being served in time ends the run. */
async function waitUntilServed(deps: EvaluatorDeps, runId: string, iteration: number, signal: AbortSignal): Promise<void> {
  try {
    await waitForPolicyVersion(deps.policyClient, { runId, version: iteration }, { timeoutMs: deps.versionWaitMs, signal });
    await deps.prmClient.waitForVersion({ runId, version: 0 }, { timeoutMs: deps.versionWaitMs, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new FailedPreconditionError(`policy v${iteration} and prm v0 are not both served: ${describeError(error)}`, { cause: error });
  }
}

/** Greedy accuracy, Pass@K and Reward-Pass@k on the validation set (over the grid when sweeping) and greedy accuracy on the test splits. */
async function measure(deps: EvaluatorDeps, run: runV1.Run, spec: ResolvedRunSpec, iteration: number, signal: AbortSignal): Promise<EvaluationRecord> {
  const { runId } = run;
  const now = deps.now ?? ((): Date => new Date());
  const ref = policyRef(runId, iteration);
  const sampler = remoteSampler(deps.policyClient, { policy: ref });
  const k = spec.temperature.evalSamplesPerPrompt;
  const rewardK = spec.temperature.rewardPassK;
  const current = run.temperature ?? spec.temperature.staticTemperature;
  const last = iteration === spec.iterations;
  // After the last iteration nothing is selected: Pass@K is measured at the last temperature in use.
  const plan = last ? ({ sweep: false, temperature: current } as const) : temperaturePlan(spec, iteration + 1, current);
  const common = {
    policy: { sampler },
    topP: spec.topP,
    maxNewTokens: spec.maxNewTokens,
    seed: deriveSeed(spec.seed, 'balancer', iteration),
    promptsPerBatch: deps.promptsPerCall,
    greedyPromptsPerBatch: deps.promptsPerCall * k,
    signal,
  } satisfies Partial<EvaluateOptions>;
  const progress = progressReporter(deps, runId, iteration);

  const validationItems = runItems(spec.world, 'validation');
  const validation = await evaluate({
    ...common,
    items: validationItems,
    k,
    temperature: plan.sweep ? plan.grid : [plan.temperature],
    scorer: limitConcurrency(prmScorer(deps.prmClient, { prm: prmRef(runId), aggregation: spec.aggregation, callOptions: { signal } }), deps.scoreConcurrency),
    rewardK,
    onProgress: progress('validation'),
  });
  const greedy = validation.greedyAccuracy ?? 0;
  const rows: commonV1.TemperatureSweepRow[] = validation.temperatures
    .map((t) => ({ temperature: t.temperature, passAtK: t.passAtK, rewardPassAtK: t.rewardPassAtK ?? 0, sampleAccuracy: t.sampleAccuracy }))
    .sort((a, b) => a.temperature - b.temperature);
  const chosen = plan.sweep ? chooseTemperature(rows, spec.temperature.mode, current) : plan.temperature;
  // The choice is always one of the rows' temperatures (a sweep's, or the single one measured).
  const at = rows.find((row) => row.temperature === chosen)!;

  const greedyOn = async (split: EvaluationSplit): Promise<number | undefined> => {
    const items = runItems(spec.world, split);
    if (items.length === 0) return undefined;
    const result = await evaluate({ ...common, items, temperature: [], onProgress: progress(split) });
    return result.greedyAccuracy;
  };
  const splits = spec.evaluation.splits;
  const inDomain = splits.includes(runV1.TestSplit.IN_DOMAIN) ? await greedyOn('test') : undefined;
  let outOfDomain: EvaluationRecord['outOfDomain'];
  if (splits.includes(runV1.TestSplit.OUT_OF_DOMAIN)) {
    const compose = await greedyOn('test-ood-compose');
    const style = await greedyOn('test-ood-style');
    if (compose !== undefined && style !== undefined) outOfDomain = { compose, style };
  }

  const published = await readPolicySeen(deps.artifacts, runId, iteration);
  // A policy's wall time runs from the previous policy's checkpoint, or from the run's start where
  // that is later: a v0 copied from another run (`mstar experiment --reuse-warmup`) predates the run.
  const since = iteration === 0 ? run.createdAt : (await readPolicySeen(deps.artifacts, runId, iteration - 1))?.createdAt;
  const previous = since !== undefined && run.createdAt !== undefined && since < run.createdAt ? run.createdAt : since;
  const end = published?.createdAt;
  const stats: commonV1.IterationStats = {
    iteration,
    policy: ref,
    temperature: iteration === 0 ? 0 : current,
    greedyAccuracyValidation: greedy,
    greedyAccuracyInDomain: inDomain,
    greedyAccuracyOutOfDomain: outOfDomain === undefined ? undefined : (outOfDomain.compose + outOfDomain.style) / 2,
    evalTemperature: chosen,
    passAtK: at.passAtK,
    rewardPassAtK: at.rewardPassAtK,
    passAtKGap: at.passAtK - greedy,
    samplesPerPrompt: k,
    rewardPassK: rewardK,
    datasetSize: published?.trainingExamples ?? 0,
    wallSeconds: end !== undefined && previous !== undefined ? Math.max(0, (end.getTime() - previous.getTime()) / 1000) : 0,
    evaluatedAt: now(),
  };
  const selection: eventsV1.TemperatureSelected | undefined = last
    ? undefined
    : {
        iteration: iteration + 1,
        temperature: chosen,
        mode: spec.temperature.mode,
        swept: plan.sweep,
        sweep: plan.sweep ? { policy: ref, samplesPerPrompt: k, rewardPassK: rewardK, validationPrompts: validationItems.length, greedyAccuracy: greedy, rows } : undefined,
        policy: ref,
      };
  return { stats, selection, outOfDomain };
}

/**
 * Stores the row in the run record: with a selection the run moves to the next iteration at the
 * chosen temperature; after the last iteration it SUCCEEDS. Undefined when the run ended meanwhile.
 */
async function appendRow(deps: EvaluatorDeps, runId: string, spec: ResolvedRunSpec, record: EvaluationRecord): Promise<runV1.Run | undefined> {
  const now = deps.now ?? ((): Date => new Date());
  let applied = false;
  const run = await updateRun(deps.runStore, runId, (current) => {
    applied = !isTerminal(current.state);
    if (!applied) return current;
    const at = now();
    const summary = [...current.summary.filter((row) => row.iteration !== record.stats.iteration), record.stats].sort((a, b) => a.iteration - b.iteration);
    const { selection } = record;
    if (selection !== undefined) {
      return {
        ...current,
        summary,
        temperature: selection.temperature,
        iteration: Math.max(current.iteration, selection.iteration),
        stage: Math.max(current.stage, commonV1.Stage.ITERATION),
        updatedAt: at,
      };
    }
    return { ...current, summary, state: runV1.RunState.SUCCEEDED, stage: commonV1.Stage.EVALUATION, iteration: spec.iterations, finishedAt: at, updatedAt: at };
  });
  return applied ? run : undefined;
}

/** Maps the harness's progress to BalancerProgress and logs it at most every ~10 s (and at each phase's end). */
function progressReporter(deps: EvaluatorDeps, runId: string, iteration: number): (split: EvaluationSplit) => (event: EvalProgress) => void {
  const period = deps.progressLogMs ?? 10_000;
  let lastLog = performance.now();
  return (split) => (event) => {
    const progress: BalancerProgress = {
      runId,
      stage: 'evaluate',
      iteration,
      split,
      phase: event.phase,
      temperature: event.temperature,
      done: event.done,
      total: event.total,
      etaMs: event.etaMs,
    };
    deps.onProgress?.(progress);
    const nowMs = performance.now();
    if (nowMs - lastLog >= period || event.done === event.total) {
      lastLog = nowMs;
      deps.logger.info({ runId, iteration, split, phase: event.phase, temperature: event.temperature, done: event.done, total: event.total, etaMs: Math.round(event.etaMs) }, 'evaluation progress');
    }
  };
}

