export type {
  BusLogger,
  CloseConsumerOptions,
  Consumer,
  ConsumerOptions,
  ConsumerStats,
  EventBus,
  EventMeta,
  PublishOptions,
  PublishResult,
  Rejection,
  RejectionReason,
} from './types.js';
export {
  DEFAULT_BACKOFF_MS,
  DEFAULT_DEAD_LETTER_PREFIX,
  DEFAULT_DUPLICATE_WINDOW_MS,
  DEFAULT_MAX_DELIVER,
  DeadLetterHeaders,
  parseDeadLetter,
} from './delivery.js';
export type { DeadLetterInfo } from './delivery.js';
export { EventBusClosedError, EventBusUnavailableError, InvalidSubjectError, PublishRejectedError } from './errors.js';
export { createInProcessBus } from './in-process-bus.js';
export type { InProcessBusOptions } from './in-process-bus.js';
export { createJetStreamBus } from './jetstream-bus.js';
export type { JetStreamBusOptions } from './jetstream-bus.js';
