import { describe, expect, it } from 'vitest';
import { commonV1, runV1 } from '../src/index.js';
import { fullRunSpec, iterationStats } from './fixtures.js';

describe('RunSpec', () => {
  it('survives a binary round trip with every field set', () => {
    const spec = fullRunSpec();
    const bytes = runV1.RunSpec.encode(spec).finish();
    expect(runV1.RunSpec.decode(bytes)).toEqual(spec);
  });

  it('keeps the explicit temperature list form of the grid oneof', () => {
    const spec: runV1.RunSpec = {
      ...fullRunSpec(),
      temperature: {
        mode: runV1.TemperatureMode.STATIC,
        staticTemperature: 0.7,
        grid: { grid: { $case: 'list', value: { values: [0.5, 1, 1.5] } } },
        retuneEvery: 3,
        rewardPassK: 4,
        evalSamplesPerPrompt: 8,
      },
    };
    const decoded = runV1.RunSpec.decode(runV1.RunSpec.encode(spec).finish());
    expect(decoded.temperature?.grid?.grid).toEqual({ $case: 'list', value: { values: [0.5, 1, 1.5] } });
    expect(decoded).toEqual(spec);
  });

  it('round-trips through proto JSON with prefixed enum names', () => {
    const spec = fullRunSpec();
    const json = runV1.RunSpec.toJSON(spec) as Record<string, unknown>;
    expect(json['trainingMethod']).toBe('TRAINING_METHOD_CONTINUOUS');
    expect(json['aggregation']).toBe('AGGREGATION_MIN');
    expect(runV1.RunSpec.fromJSON(JSON.parse(JSON.stringify(json)))).toEqual(spec);
  });

  it('reads snake_case field names, as a parsed YAML run file has them', () => {
    const spec = runV1.RunSpec.fromJSON({
      name: 'static-1.0',
      samples_per_prompt: 16,
      interval_fraction: 0.25,
      training_method: 'TRAINING_METHOD_RESTART_FROM_INITIAL',
      selection: { rule: 'SELECTION_RULE_RANDOM_K', k: 2 },
      temperature: { mode: 'TEMPERATURE_MODE_STATIC', static_temperature: 1.0 },
    });
    expect(spec.samplesPerPrompt).toBe(16);
    expect(spec.intervalFraction).toBe(0.25);
    expect(spec.trainingMethod).toBe(runV1.TrainingMethod.RESTART_FROM_INITIAL);
    expect(spec.selection).toEqual({ rule: runV1.SelectionRule.RANDOM_K, k: 2, alpha: 0, chainCheck: runV1.ChainCheck.UNSPECIFIED, distinct: false, balanceAnswers: false, unsolvedOnly: false, greedyFirst: false, rationalize: false });
    expect(spec.temperature?.staticTemperature).toBe(1);
    expect(spec.temperature?.mode).toBe(runV1.TemperatureMode.STATIC);
  });

  it('encodes a Run record with its times, optional temperature and summary rows', () => {
    const run: runV1.Run = {
      runId: 'r-1',
      spec: fullRunSpec(),
      state: runV1.RunState.RUNNING,
      stage: commonV1.Stage.ITERATION,
      iteration: 3,
      temperature: 1.2,
      errorMessage: '',
      createdAt: new Date('2026-11-25T15:00:00.000Z'),
      updatedAt: new Date('2026-11-25T15:30:00.123Z'),
      finishedAt: undefined,
      summary: [iterationStats('r-1', 0), iterationStats('r-1', 1)],
      idempotencyKey: 'cli-42',
    };
    const decoded = runV1.Run.decode(runV1.Run.encode(run).finish());
    expect(decoded).toEqual(run);
    expect(decoded.updatedAt?.getTime()).toBe(Date.parse('2026-11-25T15:30:00.123Z'));
  });

  it('tells an unset optional temperature from a zero one', () => {
    const base = runV1.Run.create({ runId: 'r-2' });
    expect(runV1.Run.decode(runV1.Run.encode(base).finish()).temperature).toBeUndefined();
    const zero = runV1.Run.create({ runId: 'r-2', temperature: 0 });
    expect(runV1.Run.decode(runV1.Run.encode(zero).finish()).temperature).toBe(0);
  });
});
