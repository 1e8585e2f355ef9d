import { Metadata, status as Status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { InvalidArgumentError, isMstarError, type MstarErrorCode } from '@mstar/errors';

export { Status };

const STATUS_BY_CODE: Record<MstarErrorCode, Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: Status.UNAVAILABLE,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  CANCELLED: Status.CANCELLED,
  INTERNAL: Status.INTERNAL,
};

/** What a client sees for every failure that is not a domain error: nothing about our internals. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/**
 * A gRPC status ready to hand to grpc-js (`callback(err)` / `call.emit('error', err)`). grpc-js
 * reads only `code`, `details` and `metadata`; `cause` keeps the original error for our logs and
 * is never sent.
 */
export class GrpcStatusError extends Error implements ServiceError {
  readonly code: Status;
  readonly details: string;
  readonly metadata: Metadata;

  constructor(code: Status, details: string, options?: { cause?: unknown; metadata?: Metadata }) {
    super(`${Status[code]}: ${details}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GrpcStatusError';
    this.code = code;
    this.details = details;
    this.metadata = options?.metadata ?? new Metadata();
  }
}

/**
 * The one place a thrown value becomes a gRPC status. Domain errors keep their message (an
 * InvalidArgumentError names its field); an MstarError with code INTERNAL and anything that is not
 * an MstarError become INTERNAL with a generic message, the original kept only as `cause`.
 */
export function toGrpcStatus(err: unknown): GrpcStatusError {
  if (err instanceof GrpcStatusError) return err;
  if (isMstarError(err) && err.code !== 'INTERNAL') {
    return new GrpcStatusError(STATUS_BY_CODE[err.code], detailsOf(err), { cause: err });
  }
  return new GrpcStatusError(Status.INTERNAL, INTERNAL_ERROR_MESSAGE, { cause: err });
}

function detailsOf(err: Error): string {
  if (err instanceof InvalidArgumentError && err.field !== undefined && !err.message.startsWith(err.field)) {
    return `${err.field}: ${err.message}`;
  }
  return err.message;
}

/** The readable name of a status code (`'NOT_FOUND'`), for logs and metric labels. */
export function statusName(code: Status): string {
  return Status[code] ?? `STATUS_${code}`;
}
