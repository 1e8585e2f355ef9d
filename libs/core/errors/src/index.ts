export {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  describeError,
  FailedPreconditionError,
  InvalidArgumentError,
  isMstarError,
  MstarError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from './errors.js';
export type { InvalidArgumentErrorOptions, MstarErrorCode, MstarErrorOptions } from './errors.js';
