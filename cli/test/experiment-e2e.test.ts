import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult, runDir } from '../src/experiment/index.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** Runs the mstar command; resolves with its exit code and output. */
function mstar(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('mstar experiment tiny (the whole pipeline, one row at one seed)', () => {
  let out: string;
  let first: Awaited<ReturnType<typeof mstar>>;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'mstar-experiment-e2e-'));
    first = await mstar('experiment', 'tiny', '--only', 'm-star', '--seeds', '7', '--out', out);
  }, 240_000);
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('runs the row, stores its result with the sweep tables, and reports every row', async () => {
    expect(first.status, first.stderr.slice(-2000)).toBe(0);
    expect(first.stderr).toContain('experiment tiny: 1 runs (1 rows x 1 seeds), 0 complete, 1 to run');
    expect(first.stderr).toMatch(/\[1\/1\] m-star seed 7: done in \d+ s/);
    const result = await readResult(runDir(out, 'm-star', 7));
    expect(result.runId).toBe('tiny-m-star-s7');
    expect(result.iterations.map((s) => s.iteration)).toEqual([0, 1, 2]);
    // specs/tiny.yaml sweeps [0.7, 1.0] before each of its 2 iterations (retune_every 1).
    expect(result.selections.map((s) => [s.iteration, s.swept, s.sweep?.rows.map((r) => r.temperature)])).toEqual([
      [1, true, [0.7, 1]],
      [2, true, [0.7, 1]],
    ]);
    expect(result.iterations[1]?.temperature).toBe(result.selections[0]?.temperature);
    // runLocal's own files are there too.
    expect(await readdir(runDir(out, 'm-star', 7))).toEqual(expect.arrayContaining(['artifacts', 'services.log', 'spec.yaml', 'summary.json', 'summary.md', 'result.json']));

    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>[];
    expect(summary.map((r) => [r['row'], r['seeds'], r['missing_seeds']])).toEqual([
      ['warm-up', [7], []],
      ['m-star', [7], []],
      ['static', [], [7]],
    ]);
    expect(summary[1]?.['id_greedy_mean']).toBe(result.iterations[2]?.greedyAccuracyInDomain);
    expect(summary[0]?.['id_greedy_mean']).toBe(result.iterations[0]?.greedyAccuracyInDomain);
    expect(JSON.parse(await readFile(join(out, 'sweeps.json'), 'utf8'))).toHaveLength(4);
    expect((await readdir(join(out, 'plots'))).sort()).toEqual([
      'dataset-size.svg',
      'greedy-in-domain.svg',
      'greedy-out-of-domain.svg',
      'pass-at-k-gap.svg',
      'pass-at-k.svg',
      'reward-pass-by-temperature.svg',
      'temperature.svg',
    ]);
    expect(await readFile(join(out, 'table.md'), 'utf8')).toContain('| m-star | M-STAR as specs/tiny.yaml sets it');
  });

  it('skips the complete run when called again, and rebuilds the report alone with --report-only', async () => {
    const again = await mstar('experiment', 'tiny', '--only', 'm-star', '--seeds', '7', '--out', out);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('0 runs done now, 1 complete before, 0 failed');
    await rm(join(out, 'table.md'));
    const report = await mstar('experiment', 'tiny', '--seeds', '7', '--out', out, '--report-only');
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout).toContain(`1 complete runs reported in ${out}`);
    expect(await readFile(join(out, 'table.md'), 'utf8')).toContain('| m-star |');
  }, 120_000);

  it('under --reuse-warmup starts another row from the complete run\'s v0 instead of training it again', async () => {
    const reused = await mstar('experiment', 'tiny', '--only', 'static', '--seeds', '7', '--out', out, '--reuse-warmup');
    expect(reused.status, reused.stderr.slice(-2000)).toBe(0);
    expect(reused.stderr).toContain('[1/1] static seed 7: policy v0 copied from tiny-m-star-s7');
    const [donor, result] = [await readResult(runDir(out, 'm-star', 7)), await readResult(runDir(out, 'static', 7))];
    expect(result.warmupFrom).toBe('tiny-m-star-s7');
    // The trainer published the copied v0 without training it (its log starts no warm-up), and v0
    // answers greedily as the donor's did.
    expect(await readFile(join(runDir(out, 'static', 7), 'services.log'), 'utf8')).not.toContain('"stage":"warmup","iteration":0,"msg":"training started"');
    const greedy = (s: (typeof result.iterations)[number] | undefined) => [s?.greedyAccuracyValidation, s?.greedyAccuracyInDomain, s?.greedyAccuracyOutOfDomain];
    expect(greedy(result.iterations[0])).toEqual(greedy(donor.iterations[0]));
    // v0 predates the run: no wall time of its own, and v1's counts from the run's start.
    expect(result.iterations[0]?.wallSeconds).toBe(0);
    expect(result.iterations[1]?.wallSeconds).toBeLessThan(result.wallSeconds);
    expect(await readFile(join(out, 'table.md'), 'utf8')).toContain('(v0 of tiny-m-star-s7)');
  }, 240_000);

  it('stops a row at v0 when the v0 it trains is not the one the complete run at its seed started from', async () => {
    // As if m-star had run on another machine, whose kernels trained a v0 that scores otherwise.
    const donorFile = join(runDir(out, 'm-star', 7), 'result.json');
    const original = await readFile(donorFile, 'utf8');
    const donor = JSON.parse(original) as { iterations: { greedyAccuracyInDomain?: number }[]; platform?: unknown };
    const [v0] = donor.iterations;
    if (v0 === undefined) throw new Error('m-star has no v0 row');
    const measured = v0.greedyAccuracyInDomain ?? 0;
    v0.greedyAccuracyInDomain = measured === 0.5 ? 0.25 : 0.5;
    expect(donor.platform).toMatchObject({ arch: process.arch });
    // A CPU name long enough that the reason passes CancelRun's 1,024 characters.
    const cpu = `Another CPU${' with a long name'.repeat(40)}`;
    donor.platform = { arch: 'x64', cpu, simd: ['avx512f'] };
    await writeFile(donorFile, JSON.stringify(donor));
    try {
      await rm(runDir(out, 'static', 7), { recursive: true });
      const stopped = await mstar('experiment', 'tiny', '--only', 'static', '--seeds', '7', '--out', out);
      expect(stopped.status).toBe(1);
      const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
      expect(stopped.stderr).toContain(
        `[1/1] static seed 7: FAILED (run ended RUN_STATE_CANCELLED: policy v0 is not the v0 of tiny-m-star-s7, a complete run at this seed with the same warm-up settings (greedy in-domain ${pct(measured)} against ${pct(v0.greedyAccuracyInDomain)}): trained here`,
      );
      // The row's error gives the whole reason; the run, cancelled at v0's evaluation, records it cut
      // to CancelRun's limit. v1 is never evaluated, and the row has no result.
      const reason = /FAILED \(run ended RUN_STATE_CANCELLED: (.*)\); its folder is kept/.exec(stopped.stderr)?.[1] ?? '';
      expect(reason).toContain(`; that run ran on ${cpu} (x64, avx512f). Stopped`);
      expect(reason.length).toBeGreaterThan(1024);
      expect(stopped.stderr).toContain(`run cancelled: ${reason.slice(0, 1023)}…\n`);
      expect(stopped.stderr).not.toContain('policy v1 evaluated');
      expect(await readdir(runDir(out, 'static', 7))).not.toContain('result.json');
    } finally {
      await writeFile(donorFile, original);
    }
  }, 240_000);

  it('names what is wrong in the command line', async () => {
    const missing = await mstar('experiment', 'no-such-experiment');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('mstar: experiment file');
    const seeds = await mstar('experiment', 'tiny', '--seeds', '1,x', '--report-only', '--out', out);
    expect(seeds.status).toBe(1);
    expect(seeds.stderr).toContain('mstar: --seeds: seeds[1]: must be an integer');
  }, 120_000);
});
