import * as ort from 'onnxruntime-node';
import { ExecutionError, ModelLoadError, SessionReleasedError } from './errors.js';
import { stderrLogger } from './logger.js';
import type { Logger } from './logger.js';
import { validateRequest } from './metadata.js';
import type { ModelInfo, ValueInfo } from './metadata.js';
import { isTensorType } from './tensor.js';
import type { Feeds, Outputs, PlainTensor } from './tensor.js';

export type Device = 'cpu' | 'cuda' | 'auto';
export type ExecutionProvider = 'cuda' | 'cpu';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/**
 * The execution-provider lists to try, in order, for a device. ONNX Runtime does not fall back by
 * itself: asking for CUDA where its libraries or GPU are missing throws, so CUDA requests carry a
 * CPU-only second attempt.
 */
export function resolveExecutionProviders(device: Device): readonly (readonly ExecutionProvider[])[] {
  switch (device) {
    case 'cpu':
      return [['cpu']];
    case 'cuda':
    case 'auto':
      return [['cuda', 'cpu'], ['cpu']];
  }
}

export interface SessionOptions {
  device: Device;
  /** Threads ONNX Runtime uses inside one op; its default is every core. */
  intraOpThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  logger?: Logger;
}

export interface Session extends ModelInfo {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The providers the session was created with, preferred first: `['cuda', 'cpu']` or `['cpu']`. */
  readonly executionProviders: readonly ExecutionProvider[];
  /** Validates `feeds` (see `validateRequest`), then runs; returns the requested outputs (default: all). */
  run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
  release(): Promise<void>;
}

function valueInfo(meta: ort.InferenceSession.ValueMetadata): ValueInfo {
  return meta.isTensor ? { name: meta.name, type: meta.type, dims: [...meta.shape] } : { name: meta.name, type: 'non-tensor', dims: [] };
}

function toPlain(name: string, value: ort.OnnxValue): PlainTensor {
  if (!(value instanceof ort.Tensor) || !isTensorType(value.type)) {
    throw new ExecutionError(`output "${name}" has type ${value instanceof ort.Tensor ? value.type : 'non-tensor'}, which cannot be returned as a plain tensor`);
  }
  return { type: value.type, dims: [...value.dims], data: value.data } as PlainTensor;
}

/**
 * Creates an ONNX Runtime session for a model (bytes or file path) on the requested device. With
 * `cuda` or `auto`, a failed CUDA attempt is retried on CPU and logged (warn for `cuda`, info for
 * `auto`); `executionProviders` on the result says what was used.
 */
export async function createSession(model: Uint8Array | string, options: SessionOptions): Promise<Session> {
  const logger = options.logger ?? stderrLogger;
  const attempts = resolveExecutionProviders(options.device);
  let lastError: unknown;
  for (const [index, providers] of attempts.entries()) {
    const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: [...providers] };
    if (options.intraOpThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpThreads;
    if (options.graphOptimizationLevel !== undefined) sessionOptions.graphOptimizationLevel = options.graphOptimizationLevel;
    try {
      const session = typeof model === 'string'
        ? await ort.InferenceSession.create(model, sessionOptions)
        : await ort.InferenceSession.create(model, sessionOptions);
      if (index > 0) {
        const fields = { device: options.device, tried: attempts[index - 1], using: providers, reason: String(lastError) };
        if (options.device === 'cuda') logger.warn(fields, 'CUDA execution provider unavailable, falling back to CPU');
        else logger.info(fields, 'CUDA execution provider unavailable, using CPU');
      }
      return wrap(session, providers);
    } catch (error) {
      lastError = error;
    }
  }
  const source = typeof model === 'string' ? model : `${model.byteLength} bytes`;
  throw new ModelLoadError(`ONNX Runtime could not load the model (${source}) with providers [${attempts.at(-1)!.join(', ')}]: ${String(lastError)}`, { cause: lastError });
}

function wrap(session: ort.InferenceSession, providers: readonly ExecutionProvider[]): Session {
  const info: ModelInfo = { inputs: session.inputMetadata.map(valueInfo), outputs: session.outputMetadata.map(valueInfo) };
  let released = false;
  return {
    ...info,
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    executionProviders: providers,
    async run(feeds, outputNames) {
      if (released) throw new SessionReleasedError();
      validateRequest(info, feeds, outputNames);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      let results: ort.InferenceSession.ReturnType;
      try {
        results = outputNames === undefined ? await session.run(ortFeeds) : await session.run(ortFeeds, [...outputNames]);
      } catch (cause) {
        throw new ExecutionError(`ONNX Runtime failed to run the model: ${String(cause)}`, { cause });
      }
      const outputs: Outputs = {};
      for (const [name, value] of Object.entries(results)) outputs[name] = toPlain(name, value);
      return outputs;
    },
    async release() {
      if (released) return;
      released = true;
      await session.release();
    },
  };
}
