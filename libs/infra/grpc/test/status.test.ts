import { Metadata } from '@grpc/grpc-js';
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  MstarError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from '@mstar/errors';
import { describe, expect, it } from 'vitest';
import { GrpcStatusError, INTERNAL_ERROR_MESSAGE, Status, statusName, toGrpcStatus } from '../src/index.js';

describe('toGrpcStatus', () => {
  it.each([
    [new NotFoundError('checkpoint v7 does not exist'), Status.NOT_FOUND],
    [new AlreadyExistsError('run r1 exists'), Status.ALREADY_EXISTS],
    [new FailedPreconditionError('no policy loaded'), Status.FAILED_PRECONDITION],
    [new ResourceExhaustedError('queue full'), Status.RESOURCE_EXHAUSTED],
    [new UnavailableError('nats down'), Status.UNAVAILABLE],
    [new DeadlineExceededError('took too long'), Status.DEADLINE_EXCEEDED],
    [new CancelledError('run cancelled'), Status.CANCELLED],
  ])('maps %s with its message', (err, code) => {
    const status = toGrpcStatus(err);
    expect(status.code).toBe(code);
    expect(status.details).toBe(err.message);
    expect(status.cause).toBe(err);
    expect(status.metadata).toBeInstanceOf(Metadata);
  });

  it('names the field of an invalid argument, once', () => {
    expect(toGrpcStatus(new InvalidArgumentError('must be in [0, 2], got 3', { field: 'temperature' }))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: 'temperature: must be in [0, 2], got 3',
    });
    expect(toGrpcStatus(new InvalidArgumentError('temperature must be in [0, 2]', { field: 'temperature' })).details).toBe(
      'temperature must be in [0, 2]',
    );
    expect(toGrpcStatus(new InvalidArgumentError('k must be positive')).details).toBe('k must be positive');
  });

  it('hides everything that is not a domain error behind INTERNAL, keeping it as the cause', () => {
    for (const err of [new Error('password=hunter2'), new MstarError('INTERNAL', '/secret/path'), 'a string', undefined, { code: 5 }]) {
      const status = toGrpcStatus(err);
      expect(status.code).toBe(Status.INTERNAL);
      expect(status.details).toBe(INTERNAL_ERROR_MESSAGE);
      expect(status.cause).toBe(err);
    }
  });

  it('passes a status it already built through unchanged', () => {
    const status = new GrpcStatusError(Status.ABORTED, 'retry the transaction');
    expect(toGrpcStatus(status)).toBe(status);
    expect(status.message).toBe('ABORTED: retry the transaction');
  });

  it('names status codes', () => {
    expect(statusName(Status.RESOURCE_EXHAUSTED)).toBe('RESOURCE_EXHAUSTED');
    expect(statusName(99 as Status)).toBe('STATUS_99');
  });
});
