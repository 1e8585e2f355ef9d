import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@mstar/errors';

/** A model config that is inconsistent or out of range; `issues` lists every problem found. */
export class ModelConfigError extends InvalidArgumentError {
  constructor(
    readonly issues: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`invalid model config: ${issues.join('; ')}`, options);
  }
}

/** Weights that do not fit the config: unknown, missing, wrongly shaped or typed parameters. */
export class WeightsError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly params: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A checkpoint file that is absent. `path` is the file inside the checkpoint. */
export class CheckpointNotFoundError extends NotFoundError {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint file '${path}' is missing`, options);
  }
}

/** A checkpoint whose files exist but cannot be used (unparseable, or disagreeing with each other). */
export class CheckpointError extends FailedPreconditionError {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint file '${path}': ${message}`, options);
  }
}

/** Bad model inputs (token ids, batches, images) detected before any graph runs. */
export class ModelInputError extends InvalidArgumentError {}
