import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  type MstarErrorOptions,
} from '@mstar/errors';

/** A run-store or artifact key that breaks the key rules; the message says which rule. */
export class InvalidKeyError extends InvalidArgumentError {
  constructor(
    readonly key: string,
    reason: string,
    options?: MstarErrorOptions,
  ) {
    super(`invalid key '${key}': ${reason}`, { ...options, field: 'key' });
  }
}

/** `create` found the key already holding a value. */
export class KeyExistsError extends AlreadyExistsError {
  constructor(
    readonly key: string,
    options?: MstarErrorOptions,
  ) {
    super(`key '${key}' already exists`, options);
  }
}

/** `update` expected a revision the key no longer (or never) had: someone else wrote first. */
export class RevisionConflictError extends FailedPreconditionError {
  constructor(
    readonly key: string,
    readonly expectedRevision: number,
    /** The key's revision when the update was refused, when the store reports it (0: no value). */
    readonly actualRevision: number | undefined,
    options?: MstarErrorOptions,
  ) {
    const actual = actualRevision === undefined ? '' : actualRevision === 0 ? ' (the key has no value)' : ` (it is at revision ${actualRevision})`;
    super(`update of key '${key}' expected revision ${expectedRevision}${actual}`, options);
  }
}

export class ArtifactNotFoundError extends NotFoundError {
  constructor(
    readonly key: string,
    options?: MstarErrorOptions,
  ) {
    super(`artifact '${key}' not found`, options);
  }
}

/** The backing service (NATS) could not be reached. */
export class StoreUnavailableError extends UnavailableError {}
