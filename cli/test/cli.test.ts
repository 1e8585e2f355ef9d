import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commonV1, createEvent, runV1 } from '@mstar/contracts';
import { describe, expect, it } from 'vitest';
import { describeEvent, SUMMARY_COLUMNS, summaryMarkdown, summaryRows } from '../src/index.js';

const stats = (iteration: number, over: Partial<commonV1.IterationStats> = {}): commonV1.IterationStats =>
  commonV1.IterationStats.fromPartial({
    iteration,
    policy: { runId: 'r', kind: commonV1.CheckpointKind.POLICY, version: iteration },
    temperature: 0.8,
    greedyAccuracyValidation: 0.25,
    greedyAccuracyInDomain: 0.3,
    evalTemperature: 1,
    passAtK: 0.75,
    rewardPassAtK: 0.5,
    passAtKGap: 0.5,
    samplesPerPrompt: 16,
    rewardPassK: 2,
    datasetSize: 300,
    wallSeconds: 61.4,
    ...over,
  });

describe('the per-iteration table', () => {
  it('has one row per iteration with percentages, and dashes for what the warm-up row lacks', () => {
    const rows = summaryRows([stats(0), stats(1)]);
    expect(rows[0]).toEqual(['0', 'v0', '-', '25.0', '30.0', '-', '75.0 (K=16, T=1.00)', '50.0 (k=2)', '50.0', '-', '61']);
    expect(rows[1]?.[2]).toBe('0.80');
    expect(rows[1]?.[9]).toBe('300');
    expect(rows.every((r) => r.length === SUMMARY_COLUMNS.length)).toBe(true);
    expect(summaryMarkdown([stats(0)]).split('\n')).toHaveLength(3);
  });
});

describe('event lines', () => {
  it('say what happened with the numbers', () => {
    const dataset = commonV1.DatasetStats.fromPartial({ iteration: 2, promptsTried: 256, promptsWithCorrect: 200, correctSamples: 900, checkedSamples: 900, samplesGenerated: 4096, keptSamples: 400, meanPrmScore: 0.61, temperature: 0.9 });
    const ready = (d: commonV1.DatasetStats) => createEvent({ runId: 'r', source: 'data-curation', payload: { $case: 'datasetReady', value: { dataset: d } } });
    expect(describeEvent(ready(dataset))).toBe('dataset 2: 256 prompts at T=0.9, 200 with a correct sample, 900/4096 correct, 400 kept (mean PRM 0.610)');
    expect(describeEvent(ready({ ...dataset, checkedSamples: 500 }))).toBe('dataset 2: 256 prompts at T=0.9, 200 with a correct sample, 900/4096 correct, 500 pass the chain check, 400 kept (mean PRM 0.610)');
    expect(describeEvent(ready({ ...dataset, promptsSolvedGreedily: 120 }))).toBe('dataset 2: 256 prompts at T=0.9, 200 with a correct sample, 900/4096 correct, 120 prompts already answered greedily, 400 kept (mean PRM 0.610)');
    expect(describeEvent(ready({ ...dataset, promptsRationalized: 56 }))).toBe('dataset 2: 256 prompts at T=0.9, 200 with a correct sample, 900/4096 correct, 56 sampled again with the answer as a hint, 400 kept (mean PRM 0.610)');
    const finished = createEvent({ runId: 'r', source: 'balancer', payload: { $case: 'runFinished', value: { state: runV1.RunState.FAILED, errorMessage: 'boom', summary: [] } } });
    expect(describeEvent(finished)).toBe('run finished: RUN_STATE_FAILED (boom)');
  });
});

describe('the mstar command', () => {
  const mstar = (...args: string[]) =>
    spawnSync(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', fileURLToPath(new URL('../src/main.ts', import.meta.url)), ...args], { encoding: 'utf8' });

  it('rejects a spec with a bad setting before contacting anything, naming the setting', () => {
    const result = mstar('run', 'start', '--spec', fileURLToPath(new URL('./fixtures/bad-spec.yaml', import.meta.url)), '--balancer', '127.0.0.1:1');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('mstar: top_p: must be in (0, 1], got 2');
  }, 90_000);

  it('refuses an unknown benchmark and an unknown state filter', () => {
    expect(mstar('bench', 'nope').stderr).toContain('unknown benchmark nope');
    expect(mstar('run', 'list', '--state', 'DONE').stderr).toContain('Allowed choices are PENDING');
  }, 90_000);

  it('refuses the options that act on runs together with --report-only, which runs nothing', () => {
    const out = mkdtempSync(join(tmpdir(), 'mstar-cli-'));
    try {
      for (const flag of ['--reuse-warmup', '--prune-checkpoints']) {
        const result = mstar('experiment', 'tiny', '--report-only', flag, '--out', out);
        expect([result.status, result.stderr]).toEqual([1, expect.stringContaining(`option '${flag}' cannot be used with option '--report-only'`)]);
      }
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 90_000);
});
