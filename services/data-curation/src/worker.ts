import { commonV1, createEvent, eventMessageId, eventSubject, eventsV1, type EventKind, type EventPayload, runV1 } from '@mstar/contracts';
import { describeError, InvalidArgumentError, isMstarError } from '@mstar/errors';
import type { EventBus, EventMeta } from '@mstar/events';
import { Status } from '@mstar/grpc';
import { waitForPolicyVersion } from '@mstar/policy-inference';
import type { EvalItem } from '@mstar/recipes';
import { findRun, isTerminal, runAbortSignal, updateRun } from '@mstar/runs';
import { MAX_SPEC_TEMPERATURE, poolSlice, runArtifacts, validateRunSpec, type ResolvedRunSpec } from '@mstar/runspec';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import type { Logger } from '@mstar/telemetry';
import type { TextTokenizer } from '@mstar/world';
import { SERVICE_NAME } from './config.js';
import { buildDataset, needsScores, type PrmApi } from './dataset.js';
import type { CurationMetrics, CurationStage } from './metrics.js';
import { clearOutput, readDatasetStats, readPrmDataSummary, writeDataset, writePrmData } from './outputs.js';
import { buildPrmData } from './prm-data.js';
import { progressReporter, type CurationProgress } from './progress.js';
import type { PolicyApi } from './sampling.js';

/** The PRM version every iteration scores with (docs/loop.md: the PRM has one version). */
const PRM_VERSION = 0;

export interface CurationWorkerDeps {
  readonly policy: PolicyApi;
  readonly prm: PrmApi;
  readonly bus: Pick<EventBus, 'publish'>;
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly logger: Logger;
  readonly metrics: CurationMetrics;
  /** The pool items of a world (cached by the caller). */
  readonly pool: (world: runV1.WorldSettings) => readonly EvalItem[];
  readonly tokenizer: Pick<TextTokenizer, 'encode'>;
  readonly promptsPerCall: number;
  /** How long a stage waits for policy-inference / prm-scoring to serve the pinned version. */
  readonly versionWaitMs: number;
  /** The consumers' maxDeliver: a stage failing on the last attempt marks its run FAILED. */
  readonly maxDeliver: number;
  /** Aborted when the service stops: in-flight work stops and its event is redelivered later. */
  readonly stopping: AbortSignal;
  readonly onProgress?: ((event: CurationProgress) => void) | undefined;
}

/** The two events data curation acts on. */
export type CurationEventKind = Extract<EventKind, 'checkpointPublished' | 'temperatureSelected'>;

/**
 * Decodes an event for the consumer of `kind`. Anything that is not a well-formed event of that
 * kind (wrong payload, malformed run id, identifying fields unset) throws, so the bus
 * dead-letters it and counts it as undecodable instead of retrying it.
 */
export function decodeCurationEvent(kind: CurationEventKind, data: Uint8Array): eventsV1.Event {
  const event = eventsV1.Event.decode(data);
  if (event.payload?.$case !== kind) throw new InvalidArgumentError(`expected a ${kind} event, got ${event.payload?.$case ?? 'no payload'}`, { field: 'payload' });
  if (eventMessageId(event) !== event.eventId) throw new InvalidArgumentError(`event_id ${JSON.stringify(event.eventId)} does not match the event's identity`, { field: 'event_id' });
  return event;
}

/** True for failures that no retry can fix: the input itself is wrong. */
function isBadInput(error: unknown): boolean {
  if (isMstarError(error)) return error.code === 'INVALID_ARGUMENT';
  // A dependency refusing our request as invalid (grpc-js ServiceError) will refuse it again.
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === Status.INVALID_ARGUMENT;
}

function requireInput(ok: boolean, field: string, message: string): void {
  if (!ok) throw new InvalidArgumentError(`${field}: ${message}`, { field });
}

interface StageContext {
  readonly runId: string;
  readonly spec: ResolvedRunSpec;
  readonly signal: AbortSignal;
}

/**
 * The event handlers of data curation. Each stage follows docs/loop.md: output complete ->
 * re-publish its event and stop; otherwise clear any partial output, rebuild it deterministically,
 * write it (marker last), then publish. Runs that ended are ignored; a run cancelled mid-stage
 * aborts the stage; a bad input marks the run FAILED instead of retrying forever.
 */
export function createCurationWorker(deps: CurationWorkerDeps): (event: eventsV1.Event, meta: EventMeta) => Promise<void> {
  const { logger, metrics, artifacts } = deps;

  const publish = async (runId: string, payload: EventPayload): Promise<void> => {
    const event = createEvent({ runId, payload, source: SERVICE_NAME });
    await deps.bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
  };

  const ignore = (runId: string, reason: string, fields: Record<string, unknown> = {}): void => {
    metrics.ignored(reason);
    logger.debug({ runId, reason, ...fields }, 'event ignored');
  };

  const markFailed = async (runId: string, stage: CurationStage, error: unknown): Promise<void> => {
    const message = `data-curation ${stage}: ${describeError(error)}`;
    const now = new Date();
    await updateRun(deps.runStore, runId, (run) =>
      isTerminal(run.state) ? run : { ...run, state: runV1.RunState.FAILED, errorMessage: message, updatedAt: now, finishedAt: now },
    );
    metrics.failedRun(stage);
    logger.error({ runId, stage, err: error }, 'run marked FAILED');
  };

  const runStage = async (event: eventsV1.Event, meta: EventMeta, stage: CurationStage, work: (ctx: StageContext) => Promise<void>): Promise<void> => {
    const { runId } = event;
    const run = await findRun(deps.runStore, runId);
    if (run === undefined) {
      ignore(runId, 'unknown-run');
      return;
    }
    if (isTerminal(run.state)) {
      ignore(runId, 'run-ended', { state: runV1.runStateToJSON(run.state) });
      return;
    }
    const watch = runAbortSignal(deps.runStore, runId, deps.stopping);
    const started = performance.now();
    try {
      if (run.spec === undefined) throw new InvalidArgumentError('the run record has no spec', { field: 'spec' });
      await work({ runId, spec: validateRunSpec(run.spec), signal: watch.signal });
      metrics.stageSeconds(stage, (performance.now() - started) / 1000);
    } catch (error) {
      // Stopping: the event stays unacknowledged and the next instance redoes the stage.
      if (deps.stopping.aborted) throw error;
      if (watch.signal.aborted) {
        // The signal also aborts when watching the record fails; only a run that really ended is dropped.
        const now = await findRun(deps.runStore, runId);
        if (now === undefined || isTerminal(now.state)) {
          ignore(runId, 'cancelled', { stage });
          return;
        }
      }
      if (isBadInput(error)) {
        await markFailed(runId, stage, error);
        return;
      }
      if (meta.deliveryCount >= deps.maxDeliver) await markFailed(runId, stage, error);
      else logger.warn({ runId, stage, attempt: meta.deliveryCount, err: error }, 'stage failed, the event will be redelivered');
      throw error;
    } finally {
      watch.close();
    }
  };

  const prmData = async ({ runId, spec, signal }: StageContext): Promise<void> => {
    const keys = runArtifacts(runId);
    const done = await readPrmDataSummary(artifacts, runId);
    if (done !== undefined) {
      await publish(runId, { $case: 'prmDataReady', value: done.event });
      metrics.republished('prm-data');
      logger.info({ runId }, 'prm data already complete, event re-published');
      return;
    }
    await clearOutput(artifacts, runId, keys.prmData);
    const source: commonV1.CheckpointRef = { runId, kind: commonV1.CheckpointKind.POLICY, version: 0 };
    await waitForPolicyVersion(deps.policy, source, { timeoutMs: deps.versionWaitMs, signal });
    const pool = deps.pool(spec.world);
    const items = pool.slice(pool.length - spec.prm.prompts);
    logger.info({ runId, prompts: items.length, samplesPerPrompt: spec.prm.samplesPerPrompt, rolloutsPerStep: spec.prm.rolloutsPerStep }, 'prm data started');
    const report = progressReporter({ runId, stage: 'prm-data', iteration: 0, total: items.length }, logger, deps.onProgress);
    const result = await buildPrmData({
      policy: deps.policy,
      tokenizer: deps.tokenizer,
      spec,
      source,
      items,
      promptsPerCall: deps.promptsPerCall,
      signal,
      onProgress: report,
    });
    const event: eventsV1.PrmDataReady = {
      artifactKey: keys.prmData,
      sourcePolicy: source,
      prompts: result.prompts,
      trajectories: result.trajectories.length,
      labelledSteps: result.labelledSteps,
      rollouts: result.rollouts,
      meanStepLabel: result.meanStepLabel,
    };
    await writePrmData(artifacts, runId, { event, samples: result.samples, correctSamples: result.correctSamples, droppedSamples: result.droppedSamples }, result.trajectories);
    metrics.samples('prm-data', result.samples, result.correctSamples);
    metrics.rollouts(result.rollouts);
    metrics.dropped(result.droppedSamples);
    metrics.written('prm-data');
    logger.info({ runId, ...event, droppedSamples: result.droppedSamples }, 'prm data written');
    await publish(runId, { $case: 'prmDataReady', value: event });
  };

  const dataset = async ({ runId, spec, signal }: StageContext, selected: eventsV1.TemperatureSelected): Promise<void> => {
    const { iteration, temperature, policy } = selected;
    requireInput(iteration <= spec.iterations, 'temperature_selected.iteration', `${iteration} is beyond the run's ${spec.iterations} iterations`);
    requireInput(policy !== undefined, 'temperature_selected.policy', 'is unset');
    const source = policy as commonV1.CheckpointRef;
    requireInput(
      source.kind === commonV1.CheckpointKind.POLICY && source.runId === runId && source.version === iteration - 1,
      'temperature_selected.policy',
      `must be policy v${iteration - 1} of run ${runId}, got ${commonV1.checkpointKindToJSON(source.kind)} v${source.version} of run ${source.runId}`,
    );
    requireInput(
      Number.isFinite(temperature) && temperature > 0 && temperature <= MAX_SPEC_TEMPERATURE,
      'temperature_selected.temperature',
      `must be in (0, ${MAX_SPEC_TEMPERATURE}], got ${temperature}`,
    );
    const key = runArtifacts(runId).dataset(iteration);
    const done = await readDatasetStats(artifacts, runId, iteration);
    if (done !== undefined) {
      await publish(runId, { $case: 'datasetReady', value: { dataset: done } });
      metrics.republished('dataset');
      logger.info({ runId, iteration }, 'dataset already complete, event re-published');
      return;
    }
    await clearOutput(artifacts, runId, key);
    const prmRef: commonV1.CheckpointRef = { runId, kind: commonV1.CheckpointKind.PRM, version: PRM_VERSION };
    await waitForPolicyVersion(deps.policy, source, { timeoutMs: deps.versionWaitMs, signal });
    if (needsScores(spec.selection.rule)) await deps.prm.waitForVersion(prmRef, { timeoutMs: deps.versionWaitMs, signal });
    const pool = deps.pool(spec.world);
    const slice = poolSlice(spec, iteration);
    const items = slice.indices.map((i) => pool[i] as EvalItem);
    logger.info({ runId, iteration, temperature, poolStart: slice.start, prompts: items.length, samplesPerPrompt: spec.samplesPerPrompt }, 'dataset started');
    const report = progressReporter({ runId, stage: 'dataset', iteration, total: items.length }, logger, deps.onProgress);
    const result = await buildDataset({
      policy: deps.policy,
      prm: deps.prm,
      spec,
      iteration,
      temperature,
      source,
      prmRef,
      items,
      promptsPerCall: deps.promptsPerCall,
      signal,
      onProgress: report,
    });
    const stats: commonV1.DatasetStats = {
      iteration,
      promptsTried: result.promptsTried,
      promptsWithCorrect: result.promptsWithCorrect,
      samplesGenerated: result.samplesGenerated,
      correctSamples: result.correctSamples,
      checkedSamples: result.checkedSamples,
      promptsSolvedGreedily: result.promptsSolvedGreedily,
      promptsRationalized: result.promptsRationalized,
      keptSamples: result.keptSamples,
      meanPrmScore: result.meanPrmScore,
      temperature,
      policy: source,
      artifactKey: key,
      poolStart: slice.start,
      createdAt: new Date(),
    };
    await writeDataset(artifacts, runId, stats, result.records);
    metrics.samples('dataset', result.samplesGenerated, result.correctSamples);
    metrics.kept(result.keptSamples);
    metrics.written('dataset');
    logger.info({ runId, dataset: commonV1.DatasetStats.toJSON(stats) }, 'dataset written');
    await publish(runId, { $case: 'datasetReady', value: { dataset: stats } });
  };

  return async (event, meta) => {
    const payload = event.payload;
    if (payload?.$case === 'checkpointPublished') {
      const ref = payload.value.checkpoint?.ref;
      // Only the warm-up policy starts a stage here; later checkpoints belong to the balancer.
      if (ref?.kind !== commonV1.CheckpointKind.POLICY || ref.version !== 0) {
        ignore(event.runId, 'not-warmup-policy');
        return;
      }
      await runStage(event, meta, 'prm-data', prmData);
    } else if (payload?.$case === 'temperatureSelected') {
      const selected = payload.value;
      await runStage(event, meta, 'dataset', (ctx) => dataset(ctx, selected));
    }
  };
}
