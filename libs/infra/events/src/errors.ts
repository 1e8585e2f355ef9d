import { FailedPreconditionError, InvalidArgumentError, UnavailableError, type MstarErrorOptions } from '@mstar/errors';

/** A subject, filter or durable name that the bus cannot accept. */
export class InvalidSubjectError extends InvalidArgumentError {}

/** The broker could not be reached (or did not answer) within the allowed time. */
export class EventBusUnavailableError extends UnavailableError {}

/** The bus or consumer was used after `close()`. */
export class EventBusClosedError extends FailedPreconditionError {
  constructor(what: string, options?: MstarErrorOptions) {
    super(`${what}: the event bus is closed`, options);
  }
}

/** The broker refused a publish for a reason that retrying will not fix (e.g. the payload is too large). */
export class PublishRejectedError extends FailedPreconditionError {}
