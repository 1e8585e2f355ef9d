import { InvalidArgumentError } from '@mstar/errors';

/**
 * Raised for any file that is not valid safetensors, or any tensor that cannot be written as one.
 * `tensor` names the offending tensor when the problem is local to one.
 */
export class SafetensorsError extends InvalidArgumentError {
  readonly tensor: string | undefined;

  constructor(message: string, options: { tensor?: string; cause?: unknown } = {}) {
    super(options.tensor === undefined ? message : `tensor "${options.tensor}": ${message}`, { cause: options.cause });
    this.tensor = options.tensor;
  }
}
