import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { MetricName, RowSummary, SweepPoint } from './aggregate.js';

/*
 * The experiment's figures as Vega-Lite specs rendered to SVG by Vega's headless View (no
 * browser, no canvas: text is measured by estimate, which only affects label placement).
 */

const WIDTH = 460;
const HEIGHT = 260;

type Point = { readonly row: string; readonly iteration: number; readonly value: number };

/** One line per row over the iterations, markers at each measured policy. */
function lineChart(title: string, yTitle: string, points: readonly Point[], percent: boolean): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'iteration', type: 'quantitative', title: 'iteration (0 = warm-up policy)', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false }, ...(percent ? { axis: { format: '.0f' } } : {}) },
      color: { field: 'row', type: 'nominal', title: 'row', sort: null },
    },
  };
}

function curve(rows: readonly RowSummary[], pick: (it: RowSummary['per_iteration'][number]) => number | null, scale: number, from = 0): Point[] {
  return rows.flatMap((r) =>
    r.per_iteration
      .filter((it) => it.iteration >= from)
      .flatMap((it) => {
        const v = pick(it);
        return v === null ? [] : [{ row: r.row, iteration: it.iteration, value: v * scale }];
      }),
  );
}

const metricCurve = (rows: readonly RowSummary[], metric: MetricName): Point[] => curve(rows, (it) => it[`${metric}_mean`], 100);

/** Reward-Pass@k over the grid, one panel per row that swept, one line per sweep (mean over seeds). */
function sweepChart(points: readonly SweepPoint[]): TopLevelSpec {
  const k = points[0]?.reward_pass_k ?? 2;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Reward-Pass@${k} per temperature in the balancer's sweeps (validation set, mean over seeds)`,
    data: { values: points.map((p) => ({ row: p.row, sweep: `for iteration ${p.iteration}`, iteration: p.iteration, temperature: p.temperature, value: 100 * p.reward_pass_at_k })) },
    facet: { column: { field: 'row', type: 'nominal', title: null, sort: null } },
    spec: {
      width: 300,
      height: HEIGHT,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'temperature', type: 'quantitative', title: 'sampling temperature', scale: { zero: false } },
        y: { field: 'value', type: 'quantitative', aggregate: 'mean', title: `Reward-Pass@${k} %`, scale: { zero: false } },
        color: { field: 'sweep', type: 'nominal', title: 'sweep', sort: { field: 'iteration' } },
      },
    },
  };
}

/** The figures, by file name; the sweep figure only when some run swept. */
export function plotSpecs(summary: readonly RowSummary[], sweeps: readonly SweepPoint[]): Record<string, TopLevelSpec> {
  const rows = summary.filter((r) => r.kind === 'run' && r.seeds.length > 0);
  const specs: Record<string, TopLevelSpec> = {
    'greedy-in-domain.svg': lineChart('Greedy accuracy, in-domain test (mean over seeds)', 'greedy accuracy %', metricCurve(rows, 'id_greedy'), true),
    'greedy-out-of-domain.svg': lineChart('Greedy accuracy, out-of-domain test (mean over seeds)', 'greedy accuracy %', metricCurve(rows, 'ood_greedy'), true),
    'pass-at-k.svg': lineChart('Pass@K on the validation set at the sampling temperature (mean over seeds)', 'Pass@K %', metricCurve(rows, 'pass_at_k'), true),
    'pass-at-k-gap.svg': lineChart('Pass@K minus greedy accuracy, validation set (mean over seeds)', 'Pass@K - greedy, points', metricCurve(rows, 'pass_at_k_gap'), true),
    'temperature.svg': lineChart('Sampling temperature of each iteration (mean over seeds)', 'temperature', curve(rows, (it) => it.temperature_mean, 1, 1), false),
    'dataset-size.svg': lineChart('Training examples kept per iteration (mean over seeds)', 'examples', curve(rows, (it) => it.dataset_size_mean, 1, 1), false),
  };
  if (sweeps.length > 0) specs['reward-pass-by-temperature.svg'] = sweepChart(sweeps);
  return specs;
}

/** A Vega-Lite spec as an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
