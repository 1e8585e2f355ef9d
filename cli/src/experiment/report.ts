import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { summarise, sweepPoints, type RowSummary, type SweepPoint } from './aggregate.js';
import type { Experiment } from './definition.js';
import { plotSpecs, renderSvg } from './plots.js';
import { isComplete, readResult, type RunResult } from './results.js';
import { assertSameSpec, planRuns } from './runner.js';

export interface ExperimentReport {
  readonly summary: readonly RowSummary[];
  readonly sweeps: readonly SweepPoint[];
  /** Files written, relative to the results folder. */
  readonly files: readonly string[];
}

/** The complete runs of every row at these seeds (each checked against the spec its row now defines). */
export async function collectResults(experiment: Experiment, outDir: string, seeds: readonly number[]): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const planned of planRuns(experiment, outDir, seeds)) {
    if (!(await isComplete(planned.dir))) continue;
    await assertSameSpec(planned);
    results.push(await readResult(planned.dir));
  }
  return results;
}

const pct = (x: number | null): string => (x === null ? '-' : (100 * x).toFixed(1));
const pm = (mean: number | null, std: number | null): string => (mean === null ? '-' : std === null ? pct(mean) : `${pct(mean)} ± ${pct(std)}`);
const signed = (mean: number | null, std: number | null): string => (mean === null ? '-' : `${mean >= 0 ? '+' : ''}${pm(mean, std)}`);
const line = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
const table = (head: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] => [line(head), line(head.map(() => '---')), ...rows.map(line)];

/** table.md: the results table (mean ± std over seeds), the per-seed numbers, and the figures. */
export function tableMarkdown(experiment: Experiment, summary: readonly RowSummary[], sweeps: readonly SweepPoint[], seeds: readonly number[], figures: readonly string[]): string {
  const k = summary.find((r) => r.samples_per_prompt !== null);
  const rpk = k?.reward_pass_k ?? 2;
  const out = [`# Experiment \`${experiment.name}\``, ''];
  if (experiment.description !== '') out.push(experiment.description, '');
  out.push(
    `Seeds ${seeds.join(', ')}. Each cell is the mean ± sample standard deviation over the seeds with a complete run, in %; ` +
      `greedy accuracy is measured on the in-domain (ID) and out-of-domain (OOD) test splits and the validation set, ` +
      `Pass@K (K = ${k?.samples_per_prompt ?? '-'} samples per validation prompt) and Reward-Pass@${rpk} on the validation set at the final sampling temperature. ` +
      `v0 ID = the ID greedy of the row's own warm-up policy (v0; it differs from the warm-up row's where the row sets its own warm-up); ` +
      `gain = the row's ID greedy minus the same seed's v0, in points.`,
    '',
    ...table(
      ['row', 'configuration', 'seeds', 'ID greedy %', 'OOD greedy %', 'val greedy %', 'Pass@K %', `Reward-Pass@${rpk} %`, 'v0 ID greedy %', 'ID gain vs v0', 'wall min'],
      summary.map((r) => [
        r.row,
        r.description,
        `${r.seeds.length}/${seeds.length}`,
        pm(r.id_greedy_mean, r.id_greedy_std),
        pm(r.ood_greedy_mean, r.ood_greedy_std),
        pm(r.val_greedy_mean, r.val_greedy_std),
        pm(r.pass_at_k_mean, r.pass_at_k_std),
        pm(r.reward_pass_at_k_mean, r.reward_pass_at_k_std),
        r.kind === 'warmup' ? '-' : pm(r.warmup_id_greedy_mean, r.warmup_id_greedy_std),
        r.kind === 'warmup' ? '-' : signed(r.id_greedy_gain_mean, r.id_greedy_gain_std),
        r.wall_seconds_mean === null ? '-' : (r.wall_seconds_mean / 60).toFixed(1),
      ]),
    ),
    '',
    '## Per seed',
    '',
    ...table(
      ['row', 'seed', 'policy', 'ID greedy %', 'OOD greedy %', 'val greedy %', 'Pass@K %', `Reward-Pass@${rpk} %`, 'final T', 'wall s', 'machine'],
      summary.flatMap((r) =>
        r.per_seed.map((s) => [r.row, s.seed, `v${s.final_iteration}`, pct(s.id_greedy), pct(s.ood_greedy), pct(s.val_greedy), pct(s.pass_at_k), pct(s.reward_pass_at_k), s.final_temperature.toFixed(2), s.wall_seconds.toFixed(0) + (s.warmup_from === null ? '' : ` (v0 of ${s.warmup_from})`), s.machine ?? '-']),
      ),
    ),
    '',
    '## Figures',
    '',
    ...figures.map((f) => `![${f}](plots/${f})`),
  );
  if (sweeps.length === 0) out.push('', 'No run swept temperatures (every row that ran is STATIC), so there is no Reward-Pass per temperature figure.');
  return `${out.join('\n')}\n`;
}

/**
 * Rebuilds results/<name>/: summary.json (one object per row), sweeps.json (every sweep point),
 * table.md and plots/*.svg, from the complete runs on disk.
 */
export async function writeReport(experiment: Experiment, outDir: string, seeds: readonly number[]): Promise<ExperimentReport> {
  const results = await collectResults(experiment, outDir, seeds);
  const summary = summarise(experiment, results, seeds);
  const sweeps = sweepPoints(results);
  // Figures are all rebuilt: one that no longer applies (no sweeps left) must not linger.
  await rm(join(outDir, 'plots'), { recursive: true, force: true });
  await mkdir(join(outDir, 'plots'), { recursive: true });
  const figures: string[] = [];
  for (const [file, spec] of Object.entries(plotSpecs(summary, sweeps))) {
    await writeFile(join(outDir, 'plots', file), await renderSvg(spec));
    figures.push(file);
  }
  await writeFile(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(join(outDir, 'sweeps.json'), `${JSON.stringify(sweeps, null, 2)}\n`);
  await writeFile(join(outDir, 'table.md'), tableMarkdown(experiment, summary, sweeps, seeds, figures));
  return { summary, sweeps, files: ['summary.json', 'sweeps.json', 'table.md', ...figures.map((f) => `plots/${f}`)] };
}
