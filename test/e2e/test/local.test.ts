import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalReport, runLocal, SUMMARY_COLUMNS } from '@mstar/cli';
import { runV1 } from '@mstar/contracts';
import { runArtifacts } from '@mstar/runspec';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_SPEC } from './fixture.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('npm start (the in-process launcher)', () => {
  it('runs the tiny spec through all five services in one process and writes the summary', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'mstar-local-'));
    dirs.push(outDir);
    const { run, seconds } = await runLocal({ specPath: TINY_SPEC, outDir, runId: 'local-tiny', progress: false, logLevel: 'warn' });
    expect(run.state).toBe(runV1.RunState.SUCCEEDED);
    expect(run.summary.map((s) => [s.iteration, s.policy?.version])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
    for (const s of run.summary) {
      for (const x of [s.greedyAccuracyValidation, s.greedyAccuracyInDomain ?? -1, s.greedyAccuracyOutOfDomain ?? -1, s.passAtK, s.rewardPassAtK]) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(1);
      }
      expect(s.passAtK).toBeGreaterThanOrEqual(s.rewardPassAtK);
    }
    expect(run.summary.slice(1).every((s) => [0.7, 1].includes(s.temperature))).toBe(true);
    expect(run.summary.reduce((n, s) => n + s.datasetSize, 0)).toBeGreaterThan(0);
    const a = runArtifacts('local-tiny');
    await access(join(outDir, 'artifacts', a.complete(a.policyCheckpoint(2))));
    await access(join(outDir, 'artifacts', a.complete(a.dataset(2))));
    const markdown = await readFile(join(outDir, 'summary.md'), 'utf8');
    expect(markdown.split('\n')[0]).toBe(`| ${SUMMARY_COLUMNS.join(' | ')} |`);
    expect(markdown.trim().split('\n')).toHaveLength(2 + 3);
    const saved = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as { state: string; summary: unknown[] };
    expect(saved.state).toBe('RUN_STATE_SUCCEEDED');
    expect(saved.summary).toHaveLength(3);
    expect(finalReport(run, seconds)).toMatch(/run local-tiny: RUN_STATE_SUCCEEDED/);
  }, 300_000);
});
