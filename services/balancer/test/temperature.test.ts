import { runV1, type commonV1 } from '@mstar/contracts';
import { validateRunSpec } from '@mstar/runspec';
import { describe, expect, test } from 'vitest';
import { chooseTemperature, temperaturePlan } from '../src/index.js';
import { tinySpec } from './fixture.js';

const { BALANCER_REWARD_PASS_AT_K: REWARD, BALANCER_PASS_AT_K: PASS, STATIC } = runV1.TemperatureMode;

/** A sweep table from [temperature, Pass@K, Reward-Pass@k] triples. */
const table = (...rows: [number, number, number][]): commonV1.TemperatureSweepRow[] =>
  rows.map(([temperature, passAtK, rewardPassAtK]) => ({ temperature, passAtK, rewardPassAtK, sampleAccuracy: 0 }));

describe('chooseTemperature', () => {
  const rows = table([0.4, 0.5, 0.25], [0.8, 0.75, 0.5], [1.2, 1, 0.375]);

  test('REWARD_PASS_AT_K takes the best Reward-Pass@k, PASS_AT_K the best Pass@K', () => {
    expect(chooseTemperature(rows, REWARD, 1.2)).toBe(0.8);
    expect(chooseTemperature(rows, PASS, 0.8)).toBe(1.2);
  });

  test('a tie keeps the current temperature when it is among the best', () => {
    const tied = table([0.4, 0.5, 0.5], [0.8, 0.5, 0.5], [1.2, 0.5, 0.5], [1.6, 0.5, 0.25]);
    expect(chooseTemperature(tied, REWARD, 0.8)).toBe(0.8);
    expect(chooseTemperature(tied, REWARD, 1.2)).toBe(1.2);
    expect(chooseTemperature(tied, PASS, 1.6)).toBe(1.6);
  });

  test('a tie without the current temperature goes to the lowest of the best', () => {
    const tied = table([0.4, 0.5, 0.25], [0.8, 0.75, 0.5], [1.2, 0.75, 0.5], [1.6, 0.75, 0.5]);
    expect(chooseTemperature(tied, REWARD, 0.4)).toBe(0.8);
    expect(chooseTemperature(tied, PASS, 1.0)).toBe(0.8);
    // The current temperature off the grid (the starting static temperature) is no tie partner.
    expect(chooseTemperature(tied, REWARD, 1.0)).toBe(0.8);
  });

  test('a current temperature equal to a grid point up to rounding counts as that point', () => {
    expect(chooseTemperature(table([0.7, 0.5, 0.5], [0.3 + 0.4, 0.5, 0.5]), REWARD, 0.7000000000000001)).toBe(0.7);
  });

  test('the order of the rows does not matter', () => {
    expect(chooseTemperature([...rows].reverse(), REWARD, 1.2)).toBe(0.8);
    const tied = table([1.6, 0.75, 0.5], [0.8, 0.75, 0.5]);
    expect(chooseTemperature(tied, REWARD, 0.4)).toBe(0.8);
  });

  test('STATIC never sweeps, and an empty table is no choice', () => {
    expect(() => chooseTemperature(rows, STATIC, 1)).toThrow(/only the balancer modes sweep/);
    expect(() => chooseTemperature([], REWARD, 1)).toThrow(/at least one row/);
  });
});

describe('temperaturePlan', () => {
  test('balancer modes sweep the grid before iterations 1, 1 + retune_every, ... and carry the temperature otherwise', () => {
    const spec = validateRunSpec(tinySpec((s) => (s.temperature!.retuneEvery = 2)));
    expect(temperaturePlan(spec, 1, 1)).toEqual({ sweep: true, grid: [0.5, 1, 1.5] });
    expect(temperaturePlan(spec, 2, 0.5)).toEqual({ sweep: false, temperature: 0.5 });
    expect(temperaturePlan(spec, 3, 0.5)).toEqual({ sweep: true, grid: [0.5, 1, 1.5] });
  });

  test('STATIC always uses static_temperature', () => {
    const spec = validateRunSpec(
      tinySpec((s) => {
        s.temperature!.mode = STATIC;
        s.temperature!.staticTemperature = 0.7;
      }),
    );
    expect(temperaturePlan(spec, 1, 1.5)).toEqual({ sweep: false, temperature: 0.7 });
    expect(temperaturePlan(spec, 2, 1.5)).toEqual({ sweep: false, temperature: 0.7 });
  });
});
