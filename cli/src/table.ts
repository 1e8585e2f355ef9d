import type { commonV1 } from '@mstar/contracts';
import Table from 'cli-table3';

const pct = (x: number | undefined): string => (x === undefined ? '-' : (100 * x).toFixed(1));

/** The columns of the per-iteration table (method section 4's metrics), in order. */
export const SUMMARY_COLUMNS = [
  'iter',
  'policy',
  'T',
  'greedy val %',
  'greedy ID %',
  'greedy OOD %',
  'Pass@K %',
  'Reward-Pass@k %',
  'gap',
  'dataset',
  'wall s',
] as const;

/** One row of strings per evaluated iteration. */
export function summaryRows(stats: readonly commonV1.IterationStats[]): string[][] {
  return stats.map((s) => [
    String(s.iteration),
    `v${s.policy?.version ?? s.iteration}`,
    s.iteration === 0 ? '-' : s.temperature.toFixed(2),
    pct(s.greedyAccuracyValidation),
    pct(s.greedyAccuracyInDomain),
    pct(s.greedyAccuracyOutOfDomain),
    `${pct(s.passAtK)} (K=${s.samplesPerPrompt}, T=${s.evalTemperature.toFixed(2)})`,
    `${pct(s.rewardPassAtK)} (k=${s.rewardPassK})`,
    (100 * s.passAtKGap).toFixed(1),
    s.iteration === 0 ? '-' : String(s.datasetSize),
    s.wallSeconds.toFixed(0),
  ]);
}

/** The table for a terminal. */
export function summaryTable(stats: readonly commonV1.IterationStats[]): string {
  const table = new Table({ head: [...SUMMARY_COLUMNS], style: { head: [], border: [] } });
  table.push(...summaryRows(stats));
  return table.toString();
}

/** The same table in Markdown, for READMEs and result pages. */
export function summaryMarkdown(stats: readonly commonV1.IterationStats[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(SUMMARY_COLUMNS), line(SUMMARY_COLUMNS.map(() => '---')), ...summaryRows(stats).map(line)].join('\n');
}
