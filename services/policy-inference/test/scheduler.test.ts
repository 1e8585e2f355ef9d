import { CancelledError, ResourceExhaustedError } from '@mstar/errors';
import { describe, expect, test } from 'vitest';
import { createScheduler, type WaveJob } from '../src/index.js';

interface Job extends WaveJob {
  readonly name: string;
}

function job(name: string, key = 'a', rows = 1, signal = new AbortController().signal): Job {
  return { name, key, rows, signal };
}

/** A scheduler whose waves finish only when the test says so. */
function gated(options: { maxQueue?: number; maxWaveRows?: number; concurrency?: number } = {}) {
  const waves: { names: string[]; signal: AbortSignal; finish: (err?: Error) => void }[] = [];
  const scheduler = createScheduler<Job>({
    maxQueue: options.maxQueue ?? 10,
    maxWaveRows: options.maxWaveRows ?? 100,
    concurrency: options.concurrency ?? 1,
    runWave: (jobs, signal) =>
      new Promise<void>((resolve, reject) => {
        waves.push({ names: jobs.map((j) => j.name), signal, finish: (err) => (err ? reject(err) : resolve()) });
      }),
  });
  return { scheduler, waves };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('wave scheduler', () => {
  test('batches waiting jobs with the same key into one wave, up to the row limit', async () => {
    const { scheduler, waves } = gated({ maxWaveRows: 5 });
    const first = scheduler.submit(job('first'));
    const later = [job('a1', 'a', 2), job('b1', 'b', 1), job('a2', 'a', 3), job('a3', 'a', 1)].map((j) => scheduler.submit(j));
    await tick();
    expect(waves.map((w) => w.names)).toEqual([['first']]);
    expect(scheduler.depth()).toBe(4);
    waves[0]?.finish();
    await first;
    await tick();
    // a1 (2 rows) + a2 (3 rows) fill the 5 rows; a3 waits although it has the same key.
    expect(waves.map((w) => w.names)).toEqual([['first'], ['a1', 'a2']]);
    waves[1]?.finish();
    await tick();
    expect(waves[2]?.names).toEqual(['b1']);
    waves[2]?.finish();
    await tick();
    expect(waves[3]?.names).toEqual(['a3']);
    waves[3]?.finish();
    await Promise.all(later);
    expect(scheduler.depth()).toBe(0);
  });

  test('refuses a job with RESOURCE_EXHAUSTED when the queue is full', async () => {
    const { scheduler, waves } = gated({ maxQueue: 2 });
    const running = scheduler.submit(job('running'));
    const queued = [scheduler.submit(job('q1')), scheduler.submit(job('q2'))];
    await expect(scheduler.submit(job('q3'))).rejects.toBeInstanceOf(ResourceExhaustedError);
    waves[0]?.finish();
    await running;
    await tick();
    waves[1]?.finish();
    await Promise.all(queued);
  });

  test('a job cancelled while waiting leaves the queue and never runs', async () => {
    const { scheduler, waves } = gated();
    const running = scheduler.submit(job('running'));
    const controller = new AbortController();
    const cancelled = scheduler.submit(job('cancelled', 'a', 1, controller.signal));
    controller.abort(new CancelledError('caller left'));
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    expect(scheduler.depth()).toBe(0);
    waves[0]?.finish();
    await running;
    await tick();
    expect(waves).toHaveLength(1);
  });

  test('a wave is aborted only when every one of its callers cancelled', async () => {
    const { scheduler, waves } = gated();
    const blocker = scheduler.submit(job('blocker'));
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = scheduler.submit(job('j1', 'a', 1, c1.signal));
    const p2 = scheduler.submit(job('j2', 'a', 1, c2.signal));
    waves[0]?.finish();
    await blocker;
    await tick();
    const wave = waves[1];
    expect(wave?.names).toEqual(['j1', 'j2']);
    c1.abort(new CancelledError('one left'));
    expect(wave?.signal.aborted).toBe(false);
    c2.abort(new CancelledError('both left'));
    expect(wave?.signal.aborted).toBe(true);
    wave?.finish(new Error('aborted'));
    await expect(p1).rejects.toBeInstanceOf(CancelledError);
    await expect(p2).rejects.toBeInstanceOf(CancelledError);
  });

  test('close fails waiting jobs with UNAVAILABLE and waits for the running wave', async () => {
    const { scheduler, waves } = gated();
    const running = scheduler.submit(job('running'));
    const waiting = scheduler.submit(job('waiting'));
    let closed = false;
    const closing = scheduler.close().then(() => {
      closed = true;
    });
    await expect(waiting).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await tick();
    expect(closed).toBe(false);
    waves[0]?.finish();
    await running;
    await closing;
    await expect(scheduler.submit(job('late'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
