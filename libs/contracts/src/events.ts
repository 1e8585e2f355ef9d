/**
 * Routing and identity of run events on NATS JetStream. The rules are documented in
 * proto/mstar/events/v1/events.proto; this module is their one implementation, so publishers and
 * consumers can never disagree on a subject or a de-duplication id.
 */
import { InvalidArgumentError } from '@mstar/errors';
import { CheckpointKind, checkpointKindToJSON } from './gen/mstar/common/v1/common.js';
import type { CheckpointRef } from './gen/mstar/common/v1/common.js';
import type { Event } from './gen/mstar/events/v1/events.js';

/** The payload of an event: a `{ $case, value }` union over the payload kinds. */
export type EventPayload = NonNullable<Event['payload']>;

/** The kind of an event: its payload's `$case` (`'checkpointPublished'`, ...). */
export type EventKind = EventPayload['$case'];

/** The JetStream stream that holds every run event. */
export const EVENT_STREAM = 'MSTAR_EVENTS';

/** The subject prefix of every run event. */
export const EVENT_SUBJECT_ROOT = 'mstar.events';

/** The subjects {@link EVENT_STREAM} captures: every run event. */
export const EVENT_STREAM_SUBJECTS = `${EVENT_SUBJECT_ROOT}.>`;

// Subject tokens are the proto field names of the payloads, so the subject of an event can be
// read off the .proto file. The mapped type makes a new payload kind a compile error here.
const SUBJECT_TOKENS: { readonly [K in EventKind]: string } = {
  runStarted: 'run_started',
  runFinished: 'run_finished',
  runCancelled: 'run_cancelled',
  checkpointPublished: 'checkpoint_published',
  prmDataReady: 'prm_data_ready',
  temperatureSelected: 'temperature_selected',
  datasetReady: 'dataset_ready',
  iterationEvaluated: 'iteration_evaluated',
};

/** Every event kind, in the order of the payload fields in events.proto. */
export const EVENT_KINDS = Object.keys(SUBJECT_TOKENS) as readonly EventKind[];

/**
 * Run ids: 1 to 64 characters of [A-Za-z0-9_-], starting with a letter or digit. A run id is a
 * NATS subject token, part of every event id and an artifact path segment, so it may contain
 * none of `.`, `*`, `>`, `/` or whitespace.
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** True when `runId` matches {@link RUN_ID_PATTERN}. */
export function isValidRunId(runId: string): boolean {
  return RUN_ID_PATTERN.test(runId);
}

/**
 * Throws {@link InvalidArgumentError} (with `field`) unless `runId` matches
 * {@link RUN_ID_PATTERN}.
 */
export function assertValidRunId(runId: string, field = 'run_id'): void {
  if (!isValidRunId(runId)) {
    throw new InvalidArgumentError(
      `${field} must be 1 to 64 characters of [A-Za-z0-9_-] starting with a letter or digit, got ${JSON.stringify(runId)}`,
      { field },
    );
  }
}

/** The kind of an event; throws {@link InvalidArgumentError} when it has no payload. */
export function eventKind(event: Pick<Event, 'payload'>): EventKind {
  if (event.payload === undefined) {
    throw new InvalidArgumentError('event has no payload', { field: 'payload' });
  }
  return event.payload.$case;
}

/** The subject an event is published on: `mstar.events.<run_id>.<kind>`. */
export function eventSubject(event: Pick<Event, 'runId' | 'payload'>): string {
  assertValidRunId(event.runId);
  return `${EVENT_SUBJECT_ROOT}.${event.runId}.${SUBJECT_TOKENS[eventKind(event)]}`;
}

/** Which events a consumer wants; an omitted part matches everything. */
export interface EventSubjectFilter {
  /** Only events of this run. */
  readonly runId?: string;
  /** Only events of this kind. */
  readonly kind?: EventKind;
}

/**
 * A NATS subject filter (for a consumer's `filter_subject`) matching the events selected by
 * `filter`, for example `mstar.events.*.checkpoint_published` for the checkpoints of all runs.
 */
export function eventSubjectFilter(filter: EventSubjectFilter = {}): string {
  if (filter.runId !== undefined) assertValidRunId(filter.runId, 'runId');
  const run = filter.runId ?? '*';
  const kind = filter.kind === undefined ? '*' : SUBJECT_TOKENS[filter.kind];
  return `${EVENT_SUBJECT_ROOT}.${run}.${kind}`;
}

/**
 * The de-duplication id of an event (its `event_id` and NATS message id), derived only from the
 * run id and the payload's identifying fields, so the same logical event always gets the same id
 * whoever emits it and however often:
 *
 * | kind | id |
 * |---|---|
 * | runStarted | `run/<run>/started` |
 * | runFinished | `run/<run>/finished` |
 * | runCancelled | `run/<run>/cancelled` |
 * | checkpointPublished | `run/<run>/checkpoint/<policy\|prm>/<version>` |
 * | prmDataReady | `run/<run>/prm-data/policy/<source policy version>` |
 * | temperatureSelected | `run/<run>/iteration/<iteration>/temperature` |
 * | datasetReady | `run/<run>/iteration/<iteration>/dataset` |
 * | iterationEvaluated | `run/<run>/iteration/<iteration>/evaluated` |
 *
 * Throws {@link InvalidArgumentError} naming the field when the run id is malformed, the payload
 * is missing, an identifying field is unset, or a checkpoint reference names another run.
 */
export function eventMessageId(event: Pick<Event, 'runId' | 'payload'>): string {
  const { runId } = event;
  assertValidRunId(runId);
  const payload = event.payload;
  if (payload === undefined) {
    throw new InvalidArgumentError('event has no payload', { field: 'payload' });
  }
  const prefix = `run/${runId}`;
  switch (payload.$case) {
    case 'runStarted':
      return `${prefix}/started`;
    case 'runFinished':
      return `${prefix}/finished`;
    case 'runCancelled':
      return `${prefix}/cancelled`;
    case 'checkpointPublished': {
      const ref = requireRef(payload.value.checkpoint?.ref, runId, 'checkpoint_published.checkpoint.ref');
      return `${prefix}/checkpoint/${checkpointKindToken(ref.kind)}/${ref.version}`;
    }
    case 'prmDataReady': {
      const source = requireRef(payload.value.sourcePolicy, runId, 'prm_data_ready.source_policy');
      if (source.kind !== CheckpointKind.POLICY) {
        throw new InvalidArgumentError(
          `prm_data_ready.source_policy must be a policy checkpoint, got ${checkpointKindToJSON(source.kind)}`,
          { field: 'prm_data_ready.source_policy.kind' },
        );
      }
      return `${prefix}/prm-data/policy/${source.version}`;
    }
    case 'temperatureSelected':
      return `${prefix}/iteration/${requireIteration(payload.value.iteration, 'temperature_selected.iteration')}/temperature`;
    case 'datasetReady': {
      const dataset = payload.value.dataset;
      if (dataset === undefined) {
        throw new InvalidArgumentError('dataset_ready.dataset is unset', { field: 'dataset_ready.dataset' });
      }
      return `${prefix}/iteration/${requireIteration(dataset.iteration, 'dataset_ready.dataset.iteration')}/dataset`;
    }
    case 'iterationEvaluated': {
      const stats = payload.value.stats;
      if (stats === undefined) {
        throw new InvalidArgumentError('iteration_evaluated.stats is unset', { field: 'iteration_evaluated.stats' });
      }
      // Row 0 (the warm-up policy) is a real row, so iteration 0 is valid here.
      return `${prefix}/iteration/${stats.iteration}/evaluated`;
    }
  }
}

/** What {@link createEvent} needs; the event id is computed, never passed in. */
export interface EventInit {
  /** The run the event belongs to. */
  readonly runId: string;
  /** What happened. */
  readonly payload: EventPayload;
  /** The emitting service, for example `'trainer'`. */
  readonly source: string;
  /** When the transition was observed; defaults to now. */
  readonly occurredAt?: Date;
}

/**
 * Builds an event envelope with its `eventId` set by {@link eventMessageId}. Publish it on
 * {@link eventSubject}(event) with the NATS message id `event.eventId`.
 */
export function createEvent(init: EventInit): Event {
  const eventId = eventMessageId(init);
  return {
    eventId,
    runId: init.runId,
    occurredAt: init.occurredAt ?? new Date(),
    source: init.source,
    payload: init.payload,
  };
}

function requireRef(ref: CheckpointRef | undefined, runId: string, field: string): CheckpointRef {
  if (ref === undefined) {
    throw new InvalidArgumentError(`${field} is unset`, { field });
  }
  if (ref.runId !== runId) {
    throw new InvalidArgumentError(
      `${field}.run_id is ${JSON.stringify(ref.runId)} but the event belongs to run ${JSON.stringify(runId)}`,
      { field: `${field}.run_id` },
    );
  }
  return ref;
}

function checkpointKindToken(kind: CheckpointKind): string {
  switch (kind) {
    case CheckpointKind.POLICY:
      return 'policy';
    case CheckpointKind.PRM:
      return 'prm';
    default:
      throw new InvalidArgumentError(`checkpoint kind must be POLICY or PRM, got ${checkpointKindToJSON(kind)}`, {
        field: 'checkpoint_published.checkpoint.ref.kind',
      });
  }
}

function requireIteration(iteration: number, field: string): number {
  // Self-evolving iterations are 1-based; 0 is what an unset proto3 field reads as.
  if (!Number.isInteger(iteration) || iteration < 1) {
    throw new InvalidArgumentError(`${field} must be an integer >= 1, got ${iteration}`, { field });
  }
  return iteration;
}
