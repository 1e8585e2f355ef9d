import { runV1 } from '@mstar/contracts';
import { learningRate } from '@mstar/optim';
import { describe, expect, test } from 'vitest';
import { iterationStart, loadConfig, scheduleOf } from '../src/index.js';

describe('configuration', () => {
  test('defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ GRPC_PORT: 50054, METRICS_PORT: 9464, LOG_LEVEL: 'info', RUN_BUCKET: 'mstar-runs', ARTIFACT_DIR: './artifacts', SHUTDOWN_GRACE: 20_000, DEVICE: 'cpu', INTRA_OP_THREADS: 2 });
    expect(config.NATS_URL).toBeUndefined();
    expect(config.PROTO_DIR).toMatch(/proto$/);
  });

  test('every bad variable is reported at once', () => {
    expect(() => loadConfig({ GRPC_PORT: 'x', DEVICE: 'tpu', INTRA_OP_THREADS: '0', NATS_URL: 'http://x' })).toThrow(/4 variables wrong[\s\S]*GRPC_PORT[\s\S]*NATS_URL[\s\S]*DEVICE[\s\S]*INTRA_OP_THREADS/);
  });
});

describe('optimizer settings', () => {
  const settings = (change: Partial<runV1.OptimizerSettings>): runV1.OptimizerSettings =>
    runV1.OptimizerSettings.fromPartial({ learningRate: 1e-3, schedule: runV1.LrSchedule.CONSTANT, batchSize: 4, epochsPerIteration: 1, ...change });

  test('each spec schedule maps to the @mstar/optim schedule of the same shape', () => {
    expect(scheduleOf(settings({}))).toEqual({ kind: 'constant', lr: 1e-3 });
    const warm = scheduleOf(settings({ schedule: runV1.LrSchedule.LINEAR_WARMUP, warmupSteps: 4 }));
    expect([0, 1, 3, 4, 100].map((s) => learningRate(warm, s))).toEqual([2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3]);
    // Ramp over 2 steps, cosine down to 1e-4 at step 10, then flat at the floor.
    const cosine = scheduleOf(settings({ schedule: runV1.LrSchedule.COSINE, warmupSteps: 2, decaySteps: 10, minLearningRate: 1e-4 }));
    expect(learningRate(cosine, 0)).toBeCloseTo(5e-4, 12);
    expect(learningRate(cosine, 1)).toBeCloseTo(1e-3, 12);
    expect(learningRate(cosine, 6)).toBeCloseTo(5.5e-4, 12);
    expect(learningRate(cosine, 10)).toBeCloseTo(1e-4, 12);
    expect(learningRate(cosine, 50)).toBeCloseTo(1e-4, 12);
    expect(() => scheduleOf(settings({ schedule: runV1.LrSchedule.UNSPECIFIED }))).toThrow(/optimizer\.schedule/);
  });

  test('where each training method starts iteration i', () => {
    const { CONTINUOUS, RESTART_FROM_LAST, RESTART_FROM_INITIAL, UNSPECIFIED } = runV1.TrainingMethod;
    expect([1, 2, 5].map((i) => iterationStart(CONTINUOUS, i))).toEqual([
      { from: 0, resume: false },
      { from: 1, resume: true },
      { from: 4, resume: true },
    ]);
    // optimizer.continue_warmup: iteration 1 continues the warm-up's optimizer too.
    expect([1, 2].map((i) => iterationStart(CONTINUOUS, i, true))).toEqual([
      { from: 0, resume: true },
      { from: 1, resume: true },
    ]);
    expect([1, 5].map((i) => iterationStart(RESTART_FROM_LAST, i))).toEqual([
      { from: 0, resume: false },
      { from: 4, resume: false },
    ]);
    expect([1, 5].map((i) => iterationStart(RESTART_FROM_INITIAL, i))).toEqual([
      { from: 0, resume: false },
      { from: 0, resume: false },
    ]);
    expect(() => iterationStart(UNSPECIFIED, 1)).toThrow(/training_method/);
  });
});
