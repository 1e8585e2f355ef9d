import { describe, expect, it } from 'vitest';
import {
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
} from '../src/index.js';

describe('domain errors', () => {
  it.each([
    [() => new InvalidArgumentError('m'), 'INVALID_ARGUMENT', 'InvalidArgumentError'],
    [() => new NotFoundError('m'), 'NOT_FOUND', 'NotFoundError'],
    [() => new AlreadyExistsError('m'), 'ALREADY_EXISTS', 'AlreadyExistsError'],
    [() => new FailedPreconditionError('m'), 'FAILED_PRECONDITION', 'FailedPreconditionError'],
    [() => new ResourceExhaustedError('m'), 'RESOURCE_EXHAUSTED', 'ResourceExhaustedError'],
    [() => new UnavailableError('m'), 'UNAVAILABLE', 'UnavailableError'],
    [() => new DeadlineExceededError('m'), 'DEADLINE_EXCEEDED', 'DeadlineExceededError'],
    [() => new CancelledError('m'), 'CANCELLED', 'CancelledError'],
  ])('%# carries code %s and its class name', (make, code, name) => {
    const err = make();
    expect(err).toBeInstanceOf(MstarError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(code);
    expect(err.name).toBe(name);
    expect(err.message).toBe('m');
    expect(err.cause).toBeUndefined();
    expect(isMstarError(err)).toBe(true);
  });

  it('keeps the cause and the field', () => {
    const cause = new Error('disk full');
    const err = new InvalidArgumentError('must be in [0, 2], got 3', { field: 'temperature', cause });
    expect(err.cause).toBe(cause);
    expect(err.field).toBe('temperature');
    expect(new InvalidArgumentError('x').field).toBeUndefined();
  });

  it('lets other packages extend the classes with their own names', () => {
    class CheckpointMissingError extends NotFoundError {
      constructor(readonly version: number) {
        super(`checkpoint v${version} does not exist`);
      }
    }
    const err = new CheckpointMissingError(3);
    expect(err.name).toBe('CheckpointMissingError');
    expect(err.code).toBe('NOT_FOUND');
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.version).toBe(3);
  });

  it('does not treat plain errors as domain errors', () => {
    expect(isMstarError(new Error('x'))).toBe(false);
    expect(isMstarError('x')).toBe(false);
    expect(isMstarError(undefined)).toBe(false);
  });

  it('describes the cause chain', () => {
    const err = new UnavailableError('policy-inference unreachable', {
      cause: new Error('connect ECONNREFUSED', { cause: 'socket closed' }),
    });
    expect(describeError(err)).toBe(
      'UnavailableError: policy-inference unreachable <- caused by Error: connect ECONNREFUSED <- caused by socket closed',
    );
    expect(describeError(42)).toBe('42');
    expect(describeError({ status: 7 })).toBe('{"status":7}');
  });

  it('stops on a cyclic cause chain', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(describeError(a)).toBe('Error: a <- caused by Error: b');
  });
});
