import { assertValidRunId, createEvent, eventsV1, eventSubject, eventSubjectFilter, runV1, type EventKind } from '@mstar/contracts';
import { describeError, InvalidArgumentError, UnavailableError } from '@mstar/errors';
import type { Consumer, EventBus } from '@mstar/events';
import type { SftProgress } from '@mstar/recipes';
import { findRun, isTerminal, runAbortSignal, updateRun } from '@mstar/runs';
import { validateRunSpec } from '@mstar/runspec';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import type { Logger } from '@mstar/telemetry';
import { clearPartial, isComplete, readMeta, toProto, writeCheckpoint, type CheckpointMeta, type CheckpointTarget, type TrainerStage } from './checkpoints.js';
import type { TrainerMetrics } from './metrics.js';
import { trainIteration, trainPrmStage, trainWarmup, type StageDeps, type StageOutput, type StageRun } from './stages.js';
import type { StatusBoard } from './status.js';

/** One optimizer step of a stage, for the launcher's progress bars. */
export interface TrainerProgress {
  readonly runId: string;
  readonly stage: TrainerStage;
  /** 1-based self-evolving iteration; 0 for the warm-up and the PRM. */
  readonly iteration: number;
  /** Steps of this stage so far, 1..totalSteps. */
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly etaMs: number;
}

export interface ConsumerDeps extends StageDeps {
  readonly service: string;
  readonly bus: EventBus;
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly logger: Logger;
  readonly metrics: TrainerMetrics;
  readonly status: StatusBoard;
  /** Aborts when the service stops: training ends after the step in flight and the event stays unacked. */
  readonly shutdown: AbortSignal;
  readonly onProgress?: ((event: TrainerProgress) => void) | undefined;
  /** Milliseconds between progress log lines of a running stage. */
  readonly progressLogMs: number;
}

/** The training an event asks for. */
interface Job {
  readonly runId: string;
  readonly stage: TrainerStage;
  readonly iteration: number;
  readonly target: CheckpointTarget;
  /** The run's spec: RunStarted carries it, later events use the run record's. */
  readonly spec: (record: runV1.Run) => runV1.RunSpec | undefined;
  readonly train: (run: StageRun) => Promise<StageOutput>;
}

/** The kinds the trainer consumes, and what each asks for. */
const CONSUMED = ['runStarted', 'prmDataReady', 'datasetReady'] as const;
type ConsumedKind = (typeof CONSUMED)[number];

/** Maximum handler attempts per event: shutdowns mid-stage each cost one (the event is handed back). */
const MAX_DELIVER = 10;

function invalidEvent(message: string, field: string): InvalidArgumentError {
  return new InvalidArgumentError(`undecodable event: ${message}`, { field });
}

/**
 * Decodes an event of one kind and checks what the trainer needs of it; throwing here marks the
 * event as poison (dead-lettered and counted by the bus, never retried).
 */
export function decodeEvent(kind: ConsumedKind, data: Uint8Array): eventsV1.Event {
  const event = eventsV1.Event.decode(data);
  assertValidRunId(event.runId);
  const payload = event.payload;
  if (payload?.$case !== kind) throw invalidEvent(`expected a ${kind} payload, got ${payload?.$case ?? 'none'}`, 'payload');
  switch (payload.$case) {
    case 'runStarted':
      if (payload.value.spec === undefined) throw invalidEvent('run_started.spec is unset', 'run_started.spec');
      break;
    case 'prmDataReady':
      if (payload.value.artifactKey === '') throw invalidEvent('prm_data_ready.artifact_key is empty', 'prm_data_ready.artifact_key');
      break;
    case 'datasetReady': {
      const dataset = payload.value.dataset;
      if (dataset === undefined) throw invalidEvent('dataset_ready.dataset is unset', 'dataset_ready.dataset');
      if (dataset.artifactKey === '') throw invalidEvent('dataset_ready.dataset.artifact_key is empty', 'dataset_ready.dataset.artifact_key');
      if (dataset.iteration < 1) throw invalidEvent(`dataset_ready.dataset.iteration must be >= 1, got ${dataset.iteration}`, 'dataset_ready.dataset.iteration');
      break;
    }
  }
  return event;
}

function jobOf(event: eventsV1.Event, deps: StageDeps): Job {
  const { runId } = event;
  const fromRecord = (record: runV1.Run): runV1.RunSpec | undefined => record.spec;
  const payload = event.payload!;
  switch (payload.$case) {
    case 'runStarted':
      return {
        runId,
        stage: 'warmup',
        iteration: 0,
        target: { kind: 'policy', version: 0 },
        spec: () => payload.value.spec,
        train: (run) => trainWarmup(deps, run),
      };
    case 'prmDataReady':
      return { runId, stage: 'prm', iteration: 0, target: { kind: 'prm', version: 0 }, spec: fromRecord, train: (run) => trainPrmStage(deps, run, payload.value.artifactKey) };
    case 'datasetReady': {
      const { iteration, artifactKey } = payload.value.dataset!;
      return { runId, stage: 'iteration', iteration, target: { kind: 'policy', version: iteration }, spec: fromRecord, train: (run) => trainIteration(deps, run, iteration, artifactKey) };
    }
    default:
      throw new InvalidArgumentError(`the trainer does not handle ${payload.$case} events`, { field: 'payload' });
  }
}

/** Runs one job at a time: the trainer is the single writer of weights and shares its cores with nobody. */
function createLock(): { run<T>(work: () => Promise<T>): Promise<T>; idle(): Promise<void> } {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run(work) {
      const result = tail.then(work);
      tail = result.catch(() => undefined);
      return result;
    },
    idle: () => tail.then(() => undefined),
  };
}

export interface TrainerConsumers {
  readonly consumers: readonly Consumer[];
  /** Resolves once no job runs (call after aborting `shutdown`). */
  idle(): Promise<void>;
}

/**
 * Opens one durable consumer per consumed kind (`<service>-<kind>`, all runs). Each event: runs
 * that ended (or have no record) are skipped; a checkpoint already COMPLETE is re-published and
 * nothing is trained; otherwise whatever a crashed attempt left is deleted, the stage trains from
 * its inputs (deterministically), writes the checkpoint (COMPLETE last) and publishes it. Bad
 * input (invalid spec, undecodable data, unknown prompt) marks the run FAILED; a cancelled run's
 * training stops after the step in flight.
 */
export async function startConsumers(deps: ConsumerDeps): Promise<TrainerConsumers> {
  const { logger, metrics, status } = deps;
  const lock = createLock();

  const publish = async (runId: string, meta: CheckpointMeta): Promise<void> => {
    const event = createEvent({ runId, source: deps.service, payload: { $case: 'checkpointPublished', value: { checkpoint: toProto(runId, meta) } } });
    const result = await deps.bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
    metrics.published(meta.kind);
    logger.info({ runId, kind: meta.kind, version: meta.version, duplicate: result.duplicate }, 'checkpoint published');
  };

  const markFailed = async (job: Job, err: unknown): Promise<void> => {
    const message = `trainer (${job.stage}${job.stage === 'iteration' ? ` ${job.iteration}` : ''}): ${describeError(err)}`;
    logger.error({ runId: job.runId, stage: job.stage, iteration: job.iteration, err }, 'bad input: marking the run FAILED');
    metrics.runFailed(job.stage);
    const now = new Date();
    await updateRun(deps.runStore, job.runId, (run) => (isTerminal(run.state) ? run : { ...run, state: runV1.RunState.FAILED, errorMessage: message, updatedAt: now, finishedAt: now }));
  };

  /** True when the run can take no more work: no record, or a terminal state. */
  const runEnded = async (runId: string): Promise<boolean> => {
    const record = await findRun(deps.runStore, runId);
    return record === undefined || isTerminal(record.state);
  };

  const progressOf = (job: Job): ((event: SftProgress) => void) => {
    let lastLog = 0;
    let lastSeen = 0;
    return (p) => {
      status.progress(job.runId, p);
      metrics.step(job.stage, { loss: p.loss, lr: p.lr, tokensPerSecond: p.tokensPerSecond, examples: p.examplesSeen - lastSeen });
      lastSeen = p.examplesSeen;
      deps.onProgress?.({ runId: job.runId, stage: job.stage, iteration: job.iteration, step: p.step, totalSteps: p.totalSteps, loss: p.loss, etaMs: p.etaMs });
      const now = performance.now();
      if (p.step === 1 || p.step === p.totalSteps || now - lastLog >= deps.progressLogMs) {
        lastLog = now;
        logger.info(
          { runId: job.runId, stage: job.stage, iteration: job.iteration, step: p.step, of: p.totalSteps, optimizerStep: p.optimizerStep, loss: p.loss, lr: p.lr, tokensPerSecond: Math.round(p.tokensPerSecond), etaS: Math.round(p.etaMs / 1000) },
          'training progress',
        );
      }
    };
  };

  /** Trains the job's stage under the lock; resolves when the event may be acked. */
  const train = async (job: Job): Promise<void> => {
    if (deps.shutdown.aborted) throw new UnavailableError('the trainer is stopping');
    // The state may have changed while this job waited for the lock.
    const record = await findRun(deps.runStore, job.runId);
    if (record === undefined || isTerminal(record.state)) return;
    if (await isComplete(deps.artifacts, job.runId, job.target)) return publish(job.runId, await readMeta(deps.artifacts, job.runId, job.target));
    const cancel = runAbortSignal(deps.runStore, job.runId, deps.shutdown);
    status.begin(job.runId, job.stage, job.iteration);
    let meta: CheckpointMeta | undefined;
    try {
      const given = job.spec(record);
      if (given === undefined) throw new InvalidArgumentError(`run ${job.runId}: its record has no spec`, { field: 'spec' });
      const spec = validateRunSpec(given);
      const removed = await clearPartial(deps.artifacts, job.runId, job.target);
      if (removed > 0) logger.warn({ runId: job.runId, kind: job.target.kind, version: job.target.version, removed }, 'removed a partial checkpoint');
      logger.info({ runId: job.runId, stage: job.stage, iteration: job.iteration }, 'training started');
      const started = performance.now();
      const output = await job.train({ runId: job.runId, spec, signal: cancel.signal, onProgress: progressOf(job) });
      meta = { ...output.meta, createdAt: new Date() };
      await writeCheckpoint(deps.artifacts, job.runId, output.checkpoint, meta);
      // The stage's wall time: loading its inputs, training and writing the checkpoint.
      metrics.stageDone(job.stage, (performance.now() - started) / 1000);
      logger.info({ runId: job.runId, stage: job.stage, iteration: job.iteration, steps: meta.steps, optimizerStep: meta.optimizerStep, loss: meta.loss, seconds: meta.seconds }, 'checkpoint written');
    } catch (err) {
      // Stopping: the event goes back unacked and the stage is redone after the restart.
      if (deps.shutdown.aborted) throw err;
      // Cancelled or failed elsewhere: drop the work. A watch failure also aborts, so ask the store.
      if (cancel.signal.aborted && (await runEnded(job.runId))) {
        logger.info({ runId: job.runId, stage: job.stage, iteration: job.iteration }, 'run ended: training abandoned');
        return;
      }
      if (err instanceof InvalidArgumentError) return markFailed(job, err);
      throw err;
    } finally {
      cancel.close();
      status.end(job.runId, meta);
    }
    await publish(job.runId, meta);
  };

  const handle = async (event: eventsV1.Event): Promise<void> => {
    const job = jobOf(event, deps);
    if (await runEnded(job.runId)) {
      logger.info({ runId: job.runId, stage: job.stage, iteration: job.iteration }, 'run ended or unknown: event ignored');
      return;
    }
    // Already trained: publishing again is all a redelivery needs (the bus drops the duplicate).
    if (await isComplete(deps.artifacts, job.runId, job.target)) return publish(job.runId, await readMeta(deps.artifacts, job.runId, job.target));
    await lock.run(() => train(job));
  };

  const consumers: Consumer[] = [];
  try {
    for (const kind of CONSUMED) {
      consumers.push(
        await deps.bus.consume<eventsV1.Event>({
          durable: `${deps.service}-${kind}`,
          subjects: eventSubjectFilter({ kind: kind satisfies EventKind }),
          decode: (data) => decodeEvent(kind, data),
          handler: handle,
          maxDeliver: MAX_DELIVER,
          onReject: (rejection) => {
            metrics.rejected(kind, rejection.reason);
            logger.error({ kind, reason: rejection.reason, subject: rejection.subject, sequence: rejection.sequence, err: rejection.error }, 'event rejected');
          },
        }),
      );
    }
  } catch (err) {
    await Promise.all(consumers.map((c) => c.close()));
    throw err;
  }
  return { consumers, idle: () => lock.idle() };
}
