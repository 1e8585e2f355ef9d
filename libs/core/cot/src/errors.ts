import { InvalidArgumentError } from '@mstar/errors';

/** Raised when a chain of thought cannot be built in the method's format. */
export class CotFormatError extends InvalidArgumentError {}
