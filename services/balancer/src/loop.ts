import { commonV1, eventsV1, eventSubjectFilter, isValidRunId, type EventKind } from '@mstar/contracts';
import { describeError, InvalidArgumentError, NotFoundError } from '@mstar/errors';
import type { Consumer, EventBus, EventMeta, Rejection } from '@mstar/events';
import { evaluateIteration, type EvaluatorDeps } from './evaluation.js';
import { writePolicySeen } from './records.js';
import { advanceStage } from './run-record.js';
import type { EventHub } from './watch.js';

export interface LoopDeps extends EvaluatorDeps {
  readonly bus: EventBus;
  readonly hub: EventHub;
  /** Delivery attempts per event (the bus's maxDeliver); the last failing attempt fails the run. */
  readonly maxDeliver: number;
  readonly onReject?: ((rejection: Rejection) => void) | undefined;
}

/** Follows every event of every run, in stream order: stage tracking and the WatchRun hub. */
export const EVENTS_DURABLE = 'balancer-events';
/** Evaluates policies on CheckpointPublished; its own durable, so an evaluation holds up no other event. */
export const CHECKPOINTS_DURABLE = 'balancer-checkpoints';

/** Bytes to an event (of `kind`, when given) of a valid run; anything else is poison (dead-lettered, never retried). */
function decoder(kind?: EventKind): (data: Uint8Array) => eventsV1.Event {
  return (data) => {
    const event = eventsV1.Event.decode(data);
    if (event.payload === undefined || (kind !== undefined && event.payload.$case !== kind)) {
      throw new InvalidArgumentError(`expected ${kind === undefined ? 'an event with a payload' : `a ${kind} event`}, got ${event.payload?.$case ?? 'no payload'}`, { field: 'payload' });
    }
    if (!isValidRunId(event.runId)) throw new InvalidArgumentError(`run_id ${JSON.stringify(event.runId)} is not a run id`, { field: 'run_id' });
    return event;
  };
}

/** Moves the run record's stage forward for the events that mark one (docs/loop.md). */
async function track(deps: LoopDeps, event: eventsV1.Event): Promise<void> {
  const payload = event.payload;
  let stage: commonV1.Stage;
  let iteration = 0;
  switch (payload?.$case) {
    case 'runStarted':
      stage = commonV1.Stage.WARMUP;
      break;
    case 'prmDataReady':
      stage = commonV1.Stage.PRM;
      break;
    case 'datasetReady':
      stage = commonV1.Stage.ITERATION;
      iteration = payload.value.dataset?.iteration ?? 0;
      break;
    case 'checkpointPublished': {
      const ref = payload.value.checkpoint?.ref;
      // Policy v0 starts the PRM data; the PRM starts the iterations (with v0's evaluation).
      if (ref?.kind === commonV1.CheckpointKind.POLICY && ref.version === 0) stage = commonV1.Stage.PRM_DATA;
      else if (ref?.kind === commonV1.CheckpointKind.PRM && ref.version === 0) stage = commonV1.Stage.ITERATION;
      else return;
      break;
    }
    default:
      return;
  }
  try {
    await advanceStage(deps.runStore, event.runId, stage, iteration, deps.now);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    deps.logger.warn({ runId: event.runId, kind: payload.$case, err: describeError(error) }, 'event of an unknown run ignored');
  }
}

/** CheckpointPublished(prm v0) evaluates policy v0; CheckpointPublished(policy vi), i >= 1, evaluates vi. */
async function onCheckpoint(deps: LoopDeps, event: eventsV1.Event, meta: EventMeta): Promise<void> {
  if (event.payload?.$case !== 'checkpointPublished') return;
  const checkpoint = event.payload.value.checkpoint;
  const ref = checkpoint?.ref;
  if (checkpoint === undefined || ref === undefined || ref.runId !== event.runId) {
    deps.logger.warn({ runId: event.runId }, 'checkpoint event without a reference to a checkpoint of its run ignored');
    return;
  }
  const evaluate = (iteration: number): Promise<void> =>
    evaluateIteration(deps, { runId: ref.runId, iteration, deliveryCount: meta.deliveryCount, maxDeliver: deps.maxDeliver });
  if (ref.kind === commonV1.CheckpointKind.PRM) {
    if (ref.version === 0) await evaluate(0);
    return;
  }
  if (ref.kind !== commonV1.CheckpointKind.POLICY) return;
  // Publication times give each row's wall-clock time; this consumer sees policy v(i-1) before vi.
  await writePolicySeen(deps.artifacts, { ...checkpoint, createdAt: checkpoint.createdAt ?? event.occurredAt ?? new Date() });
  if (ref.version > 0) await evaluate(ref.version);
}

/**
 * Two durable consumers over all runs (one subject filter each, as nats-server 2.9 requires): every
 * event in stream order (the record's stage is brought up to date, then the event goes to the
 * WatchRun hub, so watchers see events in publication order with the record as it is after
 * them), and CheckpointPublished for the evaluations.
 */
export async function startConsumers(deps: LoopDeps): Promise<Consumer[]> {
  const events = await deps.bus.consume<eventsV1.Event>({
    durable: EVENTS_DURABLE,
    subjects: eventSubjectFilter(),
    decode: decoder(),
    maxDeliver: deps.maxDeliver,
    handler: async (event) => {
      await track(deps, event);
      deps.hub.notify(event);
    },
    ...(deps.onReject === undefined ? {} : { onReject: deps.onReject }),
  });
  try {
    const checkpoints = await deps.bus.consume<eventsV1.Event>({
      durable: CHECKPOINTS_DURABLE,
      subjects: eventSubjectFilter({ kind: 'checkpointPublished' }),
      decode: decoder('checkpointPublished'),
      maxDeliver: deps.maxDeliver,
      handler: (event, meta) => onCheckpoint(deps, event, meta),
      ...(deps.onReject === undefined ? {} : { onReject: deps.onReject }),
    });
    return [events, checkpoints];
  } catch (error) {
    await events.close();
    throw error;
  }
}
