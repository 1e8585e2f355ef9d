/**
 * Domain errors shared by every mstar package. Each class carries a stable `code` so callers (and
 * the single gRPC mapper in @mstar/grpc) can branch on the kind of failure without string matching.
 */

export type MstarErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INTERNAL';

export interface MstarErrorOptions {
  cause?: unknown;
}

export class MstarError extends Error {
  readonly code: MstarErrorCode;

  constructor(code: MstarErrorCode, message: string, options?: MstarErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // Subclasses get their own name without repeating it in each constructor.
    this.name = new.target.name;
  }
}

export interface InvalidArgumentErrorOptions extends MstarErrorOptions {
  /** The input field (dotted path) that was wrong, when the error is about one field. */
  field?: string;
}

export class InvalidArgumentError extends MstarError {
  readonly field: string | undefined;

  constructor(message: string, options?: InvalidArgumentErrorOptions) {
    super('INVALID_ARGUMENT', message, options);
    this.field = options?.field;
  }
}

export class NotFoundError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('NOT_FOUND', message, options);
  }
}

export class AlreadyExistsError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('ALREADY_EXISTS', message, options);
  }
}

export class FailedPreconditionError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('FAILED_PRECONDITION', message, options);
  }
}

export class ResourceExhaustedError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

export class UnavailableError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('UNAVAILABLE', message, options);
  }
}

export class DeadlineExceededError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

export class CancelledError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('CANCELLED', message, options);
  }
}

/** True for any mstar domain error; narrows `unknown` in catch blocks. */
export function isMstarError(err: unknown): err is MstarError {
  return err instanceof MstarError;
}

/**
 * A human-readable one-line description of any thrown value, following the `cause` chain so a
 * wrapped error still says what went wrong underneath.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    if (current instanceof Error) {
      parts.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      parts.push(describeValue(current));
      break;
    }
  }
  return parts.join(' <- caused by ');
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'symbol':
    case 'undefined':
      return String(value);
    default:
      try {
        return JSON.stringify(value) ?? Object.prototype.toString.call(value);
      } catch {
        return Object.prototype.toString.call(value);
      }
  }
}
