/**
 * @mstar/contracts: the generated protobuf messages and grpc-js service definitions of every
 * mstar API (one namespace per proto package, e.g. `policyV1` = `mstar.policy.v1`), plus the
 * event routing helpers. The .proto files under proto/ are the contract; src/gen is generated
 * from them by `npm run codegen` and must not be edited.
 */
export * as balancerV1 from './gen/mstar/balancer/v1/balancer.js';
export * as commonV1 from './gen/mstar/common/v1/common.js';
export * as curationV1 from './gen/mstar/curation/v1/curation.js';
export * as eventsV1 from './gen/mstar/events/v1/events.js';
export * as policyV1 from './gen/mstar/policy/v1/policy.js';
export * as prmV1 from './gen/mstar/prm/v1/prm.js';
export * as runV1 from './gen/mstar/run/v1/run.js';
export * as trainerV1 from './gen/mstar/trainer/v1/trainer.js';

export {
  EVENT_KINDS,
  EVENT_STREAM,
  EVENT_STREAM_SUBJECTS,
  EVENT_SUBJECT_ROOT,
  RUN_ID_PATTERN,
  assertValidRunId,
  createEvent,
  eventKind,
  eventMessageId,
  eventSubject,
  eventSubjectFilter,
  isValidRunId,
} from './events.js';
export type { EventInit, EventKind, EventPayload, EventSubjectFilter } from './events.js';
