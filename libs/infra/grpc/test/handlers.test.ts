import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError, InvalidArgumentError } from '@mstar/errors';
import { describe, expect, it, vi } from 'vitest';
import { callSignal, GrpcStatusError, serverStream, Status, unary } from '../src/index.js';

/** A stand-in for grpc-js's call object: the surface the wrappers use, plus recording. */
class FakeCall extends EventEmitter {
  cancelled = false;
  written: unknown[] = [];
  ended = 0;
  constructor(
    readonly request: unknown,
    private readonly deadline: grpc.Deadline = Infinity,
  ) {
    super();
  }
  getDeadline(): grpc.Deadline {
    return this.deadline;
  }
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
  write(msg: unknown): boolean {
    this.written.push(msg);
    return true;
  }
  end(): void {
    this.ended++;
  }
}

const asUnary = <Req, Res>(c: FakeCall) => c as unknown as grpc.ServerUnaryCall<Req, Res>;
const asStream = <Req, Res>(c: FakeCall) => c as unknown as grpc.ServerWritableStream<Req, Res>;

describe('unary', () => {
  it('answers once with the value', async () => {
    const callback = vi.fn();
    unary((req: { x: number }) => Promise.resolve({ y: req.x * 2 }))(asUnary(new FakeCall({ x: 21 })), callback);
    await vi.waitFor(() => expect(callback).toHaveBeenCalledTimes(1));
    expect(callback).toHaveBeenCalledWith(null, { y: 42 });
  });

  it('answers a thrown domain error with its mapped status, sync throws included', async () => {
    for (const handler of [
      () => Promise.reject(new InvalidArgumentError('bad k', { field: 'k' })),
      () => {
        throw new InvalidArgumentError('bad k', { field: 'k' });
      },
    ]) {
      const callback = vi.fn();
      unary(handler)(asUnary(new FakeCall({})), callback);
      await vi.waitFor(() => expect(callback).toHaveBeenCalledTimes(1));
      const [status] = callback.mock.calls[0] as [GrpcStatusError];
      expect(status).toBeInstanceOf(GrpcStatusError);
      expect(status).toMatchObject({ code: Status.INVALID_ARGUMENT, details: 'k: bad k' });
    }
  });

  it('treats a rejection without a reason as a failure, not a success', async () => {
    const callback = vi.fn();
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    unary(() => Promise.reject(undefined))(asUnary(new FakeCall({})), callback);
    await vi.waitFor(() => expect(callback).toHaveBeenCalledTimes(1));
    expect(callback.mock.calls[0]![0]).toMatchObject({ code: Status.INTERNAL });
  });

  it('never answers after the client cancelled, even when the handler later resolves', async () => {
    const callback = vi.fn();
    const call = new FakeCall({});
    let seen: AbortSignal | undefined;
    unary(async (_req, _call, signal) => {
      seen = signal;
      await sleep(30);
      return { late: true };
    })(asUnary(call), callback);
    call.cancel();
    await sleep(60);
    expect(callback).not.toHaveBeenCalled();
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(CancelledError);
  });

  it('never answers after the deadline passed, even when the handler later throws', async () => {
    const callback = vi.fn();
    let seen: AbortSignal | undefined;
    unary(async (_req, _call, signal) => {
      seen = signal;
      await sleep(60);
      throw new Error('too late');
    })(asUnary(new FakeCall({}, Date.now() + 20)), callback);
    await sleep(100);
    expect(callback).not.toHaveBeenCalled();
    expect(seen?.reason).toBeInstanceOf(DeadlineExceededError);
  });
});

describe('serverStream', () => {
  it('ends the stream once after the handler returns', async () => {
    const call = new FakeCall({ to: 3 });
    serverStream<{ to: number }, { n: number }>(async (req, c) => {
      for (let n = 1; n <= req.to; n++) c.write({ n });
      await Promise.resolve();
    })(asStream(call));
    await vi.waitFor(() => expect(call.ended).toBe(1));
    expect(call.written).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('emits the mapped status instead of ending when the handler throws', async () => {
    const call = new FakeCall({});
    const errors: unknown[] = [];
    call.on('error', (e) => errors.push(e));
    serverStream(() => Promise.reject(new Error('secret detail')))(asStream(call));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: Status.INTERNAL, details: 'internal error' });
    expect(call.ended).toBe(0);
  });

  it('stops and neither ends nor errors once the client cancelled', async () => {
    const call = new FakeCall({});
    const errors: unknown[] = [];
    call.on('error', (e) => errors.push(e));
    let writes = 0;
    serverStream(async (_req, c, signal) => {
      while (!signal.aborted) {
        c.write({ n: ++writes });
        await sleep(5);
      }
      throw signal.reason;
    })(asStream(call));
    await sleep(22);
    call.cancel();
    const atCancel = writes;
    await sleep(30);
    expect(writes).toBeLessThanOrEqual(atCancel + 1);
    expect(call.ended).toBe(0);
    expect(errors).toEqual([]);
  });
});

describe('callSignal', () => {
  it('is aborted at once for a call already cancelled, and disposes its timer', () => {
    const call = new FakeCall({}, Date.now() + 10_000);
    call.cancelled = true;
    const { signal, dispose } = callSignal(call);
    expect(signal.aborted).toBe(true);
    dispose();
    const live = new FakeCall({}, new Date(Date.now() + 10_000));
    const second = callSignal(live);
    second.dispose();
    live.cancel();
    expect(second.signal.aborted).toBe(false);
  });
});
