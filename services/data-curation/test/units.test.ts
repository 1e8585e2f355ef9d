import { createLogger } from '@mstar/telemetry';
import { describe, expect, it } from 'vitest';
import { rolloutBudget, stepPrefix } from '../src/index.js';
import { progressReporter, type CurationProgress } from '../src/progress.js';
import { chunks, mapInOrder } from '../src/sampling.js';

describe('rollout prefixes and budgets', () => {
  it('joins the first j steps, each followed by a blank line', () => {
    expect(stepPrefix(['a', 'b', 'c'], 1)).toBe('a\n\n');
    expect(stepPrefix(['a', 'b', 'c'], 2)).toBe('a\n\nb\n\n');
  });

  it('leaves a rollout what the sample had left, in steps of 8 tokens, never below 1', () => {
    expect(rolloutBudget(48, 5)).toBe(40);
    expect(rolloutBudget(48, 8)).toBe(40);
    expect(rolloutBudget(48, 9)).toBe(32);
    expect(rolloutBudget(48, 40)).toBe(8);
    expect(rolloutBudget(48, 43)).toBe(5);
    expect(rolloutBudget(48, 48)).toBe(1);
    expect(rolloutBudget(48, 60)).toBe(1);
  });
});

describe('mapInOrder', () => {
  it('returns results in input order whatever order the calls finish in, with at most `concurrency` in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapInOrder([30, 5, 20, 1, 10], 2, async (ms, i) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return i * 10;
    });
    expect(out).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(2);
  });

  it('starts no new call after one failed', async () => {
    const started: number[] = [];
    await expect(
      mapInOrder([0, 1, 2, 3, 4], 2, async (x) => {
        started.push(x);
        await new Promise((r) => setTimeout(r, 5));
        if (x === 0) throw new Error('boom');
        return x;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([0, 1]);
  });

  it('chunks keep order and the last chunk holds the rest', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });
});

describe('progressReporter', () => {
  it('reports every step with an extrapolated ETA and logs at most every 10 s', () => {
    const lines: string[] = [];
    const logger = createLogger({ service: 't', level: 'info', destination: { write: (line: string) => lines.push(line) } });
    const events: CurationProgress[] = [];
    let now = 0;
    const report = progressReporter({ runId: 'r', stage: 'dataset', iteration: 2, total: 4 }, logger, (e) => events.push(e), () => now);
    report(0);
    now = 1_000;
    report(1);
    now = 12_000;
    report(2);
    now = 13_000;
    report(4);
    expect(events.map((e) => [e.done, e.etaMs])).toEqual([
      [0, 0],
      [1, 3_000],
      [2, 12_000],
      [4, 0],
    ]);
    expect(events[0]).toEqual({ runId: 'r', stage: 'dataset', iteration: 2, done: 0, total: 4, etaMs: 0 });
    // Logged: the start, the step 12 s later, and the end; not the step 1 s in.
    expect(lines.map((l) => (JSON.parse(l) as { done: number }).done)).toEqual([0, 2, 4]);
  });
});
