import { runV1 } from '@mstar/contracts';
import { AlreadyExistsError, NotFoundError } from '@mstar/errors';
import { createInMemoryRunStore } from '@mstar/stores';
import { describe, expect, it } from 'vitest';
import { createRun, findRun, getRun, isTerminal, runAbortSignal, updateRun } from '../src/index.js';

const run = (id: string): runV1.Run => runV1.Run.fromPartial({ runId: id, state: runV1.RunState.RUNNING, iteration: 0 });

describe('run records', () => {
  it('creates, reads and refuses a second create', async () => {
    const store = createInMemoryRunStore();
    await createRun(store, run('a'));
    expect((await getRun(store, 'a')).state).toBe(runV1.RunState.RUNNING);
    expect(await findRun(store, 'b')).toBeUndefined();
    await expect(getRun(store, 'b')).rejects.toBeInstanceOf(NotFoundError);
    await expect(createRun(store, run('a'))).rejects.toBeInstanceOf(AlreadyExistsError);
    await store.close();
  });

  it('applies concurrent updates without losing one', async () => {
    const store = createInMemoryRunStore();
    await createRun(store, run('a'));
    await Promise.all(Array.from({ length: 20 }, () => updateRun(store, 'a', (r) => ({ ...r, iteration: r.iteration + 1 }))));
    expect((await getRun(store, 'a')).iteration).toBe(20);
    await expect(updateRun(store, 'zz', (r) => r)).rejects.toBeInstanceOf(NotFoundError);
    await store.close();
  });

  it('aborts the signal when the run is cancelled, not before', async () => {
    const store = createInMemoryRunStore();
    await createRun(store, run('a'));
    const watch = runAbortSignal(store, 'a');
    await updateRun(store, 'a', (r) => ({ ...r, iteration: 1 }));
    await new Promise((r) => setTimeout(r, 20));
    expect(watch.signal.aborted).toBe(false);
    await updateRun(store, 'a', (r) => ({ ...r, state: runV1.RunState.CANCELLED }));
    await new Promise((r) => setTimeout(r, 20));
    expect(watch.signal.aborted).toBe(true);
    expect(String(watch.signal.reason)).toContain('CANCELLED');
    watch.close();
    await store.close();
  });

  it('follows a parent signal and knows the terminal states', async () => {
    const store = createInMemoryRunStore();
    await createRun(store, run('a'));
    const parent = new AbortController();
    const watch = runAbortSignal(store, 'a', parent.signal);
    parent.abort(new Error('shutdown'));
    expect(watch.signal.aborted).toBe(true);
    watch.close();
    expect([runV1.RunState.SUCCEEDED, runV1.RunState.FAILED, runV1.RunState.CANCELLED].every(isTerminal)).toBe(true);
    expect(isTerminal(runV1.RunState.RUNNING)).toBe(false);
    await store.close();
  });
});
