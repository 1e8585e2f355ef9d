import { runV1, type commonV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { sweepsBefore, temperatureGrid, type ResolvedRunSpec } from '@mstar/runspec';

/**
 * Metrics of a sweep are shares of prompts (counts over the same n), so equal counts give equal
 * floats; the tolerance only absorbs rounding from a table that travelled through JSON.
 */
const TIE_EPSILON = 1e-12;
/** Grid points are rounded to 6 decimals, so two temperatures closer than this are the same point. */
const SAME_TEMPERATURE = 1e-9;

/** What the balancer does before an iteration: sweep the grid, or use a known temperature. */
export type TemperaturePlan = { readonly sweep: true; readonly grid: readonly number[] } | { readonly sweep: false; readonly temperature: number };

/**
 * The plan for iteration `iteration` (1-based) given the temperature in use: STATIC always uses
 * `static_temperature`; the balancer modes sweep when `sweepsBefore` says so and otherwise carry
 * the current temperature over.
 */
export function temperaturePlan(spec: ResolvedRunSpec, iteration: number, current: number): TemperaturePlan {
  if (spec.temperature.mode === runV1.TemperatureMode.STATIC) return { sweep: false, temperature: spec.temperature.staticTemperature };
  if (sweepsBefore(spec, iteration)) return { sweep: true, grid: temperatureGrid(spec) };
  return { sweep: false, temperature: current };
}

/**
 * The temperature a sweep chooses: the row with the highest Reward-Pass@k (REWARD_PASS_AT_K mode)
 * or Pass@K (PASS_AT_K mode). Among tied rows the current temperature stays when it is one of
 * them (a change would only add noise), otherwise the lowest tied temperature wins (less noise in
 * the data for the same measured benefit).
 */
export function chooseTemperature(rows: readonly commonV1.TemperatureSweepRow[], mode: runV1.TemperatureMode, current: number): number {
  if (rows.length === 0) throw new InvalidArgumentError('a sweep needs at least one row', { field: 'rows' });
  let metric: (row: commonV1.TemperatureSweepRow) => number;
  if (mode === runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K) metric = (row) => row.rewardPassAtK;
  else if (mode === runV1.TemperatureMode.BALANCER_PASS_AT_K) metric = (row) => row.passAtK;
  else throw new InvalidArgumentError(`only the balancer modes sweep, got ${runV1.temperatureModeToJSON(mode)}`, { field: 'temperature.mode' });
  const best = Math.max(...rows.map(metric));
  const tied = rows.filter((row) => metric(row) >= best - TIE_EPSILON).map((row) => row.temperature);
  return tied.find((t) => Math.abs(t - current) < SAME_TEMPERATURE) ?? Math.min(...tied);
}
