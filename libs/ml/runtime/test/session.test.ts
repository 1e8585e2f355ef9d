import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  InputValidationError,
  ModelLoadError,
  SessionReleasedError,
  UnknownOutputError,
  createSession,
  resolveExecutionProviders,
  tensor,
} from '@mstar/runtime';
import type { PlainTensor } from '@mstar/runtime';
import { recordingLogger } from './logger.js';
import { addModel, int64Model } from './onnx-model.js';

const f32 = (dims: number[], values: number[]): PlainTensor => tensor('float32', dims, new Float32Array(values));

describe('resolveExecutionProviders', () => {
  it('tries CUDA with a CPU-only retry unless CPU is asked for', () => {
    expect(resolveExecutionProviders('cpu')).toEqual([['cpu']]);
    expect(resolveExecutionProviders('cuda')).toEqual([['cuda', 'cpu'], ['cpu']]);
    expect(resolveExecutionProviders('auto')).toEqual([['cuda', 'cpu'], ['cpu']]);
  });
});

describe('createSession', () => {
  it('exposes names, metadata with symbolic dims, the provider used, and runs', async () => {
    const session = await createSession(addModel(), { device: 'cpu', intraOpThreads: 1, logger: recordingLogger() });
    expect(session.inputNames).toEqual(['X', 'Y']);
    expect(session.outputNames).toEqual(['Z']);
    expect(session.inputs).toEqual([
      { name: 'X', type: 'float32', dims: ['batch', 3] },
      { name: 'Y', type: 'float32', dims: ['batch', 3] },
    ]);
    expect(session.executionProviders).toEqual(['cpu']);
    const out = await session.run({ X: f32([2, 3], [1, 2, 3, 4, 5, 6]), Y: f32([2, 3], [10, 20, 30, 40, 50, 60]) });
    expect(out['Z']).toEqual({ type: 'float32', dims: [2, 3], data: new Float32Array([11, 22, 33, 44, 55, 66]) });
    await session.release();
    await expect(session.run({ X: f32([1, 3], [0, 0, 0]), Y: f32([1, 3], [0, 0, 0]) })).rejects.toBeInstanceOf(SessionReleasedError);
  });

  it('falls back from CUDA to CPU with a warning when CUDA is absent, and says which provider it used', async () => {
    const logger = recordingLogger();
    const session = await createSession(addModel(), { device: 'cuda', logger });
    if (session.executionProviders[0] === 'cpu') {
      expect(session.executionProviders).toEqual(['cpu']);
      const warnings = logger.at('warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.fields).toMatchObject({ device: 'cuda', tried: ['cuda', 'cpu'], using: ['cpu'] });
      expect(warnings[0]!.message).toBe('CUDA execution provider unavailable, falling back to CPU');
    } else {
      expect(session.executionProviders).toEqual(['cuda', 'cpu']);
      expect(logger.records).toEqual([]);
    }
    await session.release();

    const autoLogger = recordingLogger();
    const auto = await createSession(addModel(), { device: 'auto', logger: autoLogger });
    expect(autoLogger.at('warn')).toEqual([]);
    expect(autoLogger.at('info')).toHaveLength(auto.executionProviders[0] === 'cpu' ? 1 : 0);
    await auto.release();
  });

  it('carries int64 and bool tensors and returns only the requested outputs', async () => {
    const session = await createSession(int64Model(), { device: 'cpu', logger: recordingLogger() });
    const out = await session.run({ X: tensor('int64', [2], new BigInt64Array([3n, -1n])) });
    expect(out['S']).toEqual({ type: 'int64', dims: [2], data: new BigInt64Array([6n, -2n]) });
    expect(out['B']).toEqual({ type: 'bool', dims: [2], data: new Uint8Array([1, 0]) });
    const only = await session.run({ X: tensor('int64', [2], new BigInt64Array([1n, 1n])) }, ['B']);
    expect(Object.keys(only)).toEqual(['B']);
    await session.release();
  });

  it('rejects bad feeds before running, naming the input and expected vs actual', async () => {
    const session = await createSession(addModel(), { device: 'cpu', logger: recordingLogger() });
    const y = f32([1, 3], [0, 0, 0]);
    const cases: [Record<string, PlainTensor>, string, RegExp][] = [
      [{ X: y, Y: y, W: y }, 'W', /input "W": expected one of the model inputs \(X, Y\), got an unknown input name/],
      [{ X: y }, 'Y', /input "Y": expected a float32 \[batch, 3\] tensor, got no feed \(missing input\)/],
      [{ X: tensor('float64', [1, 3], new Float64Array(3)), Y: y }, 'X', /input "X": expected type float32, got type float64/],
      [{ X: f32([3], [0, 0, 0]), Y: y }, 'X', /input "X": expected rank 2 \[batch, 3\], got rank 1 \[3\]/],
      [{ X: f32([3, 1], [0, 0, 0]), Y: y }, 'X', /input "X": expected dims \[batch, 3\] \(axis 1 = 3\), got \[3, 1\]/],
      [{ X: { type: 'float32', dims: [2, 3], data: new Float32Array(3) }, Y: y }, 'X', /input "X": expected 6 elements for dims \[2, 3\], got 3/],
      [{ X: { type: 'float32', dims: [1, 3], data: new Int32Array(3) } as unknown as PlainTensor, Y: y }, 'X', /expected a Float32Array for float32 data/],
    ];
    for (const [feeds, input, message] of cases) {
      const error = await session.run(feeds).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InputValidationError);
      expect((error as InputValidationError).input).toBe(input);
      expect((error as Error).message).toMatch(message);
    }
    await expect(session.run({ X: y, Y: y }, ['Q'])).rejects.toBeInstanceOf(UnknownOutputError);
    await session.release();
  });

  it('loads from a path and reports unloadable models as ModelLoadError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mstar-runtime-'));
    try {
      const path = join(dir, 'add.onnx');
      await writeFile(path, addModel());
      const session = await createSession(path, { device: 'cpu', logger: recordingLogger() });
      expect(session.outputNames).toEqual(['Z']);
      await session.release();
      await expect(createSession(join(dir, 'missing.onnx'), { device: 'cpu', logger: recordingLogger() })).rejects.toBeInstanceOf(ModelLoadError);
      await expect(createSession(new Uint8Array([1, 2, 3, 4]), { device: 'cpu', logger: recordingLogger() })).rejects.toThrow(/ONNX Runtime could not load the model \(4 bytes\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
