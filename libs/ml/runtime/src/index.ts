export { createSession, resolveExecutionProviders } from './session.js';
export type { Device, ExecutionProvider, GraphOptimizationLevel, Session, SessionOptions } from './session.js';
export { createSessionPool } from './pool.js';
export type { LoadedModel, RunOptions, SessionPool, SessionPoolOptions } from './pool.js';
export type { LoadResult } from './protocol.js';
export { validateRequest } from './metadata.js';
export type { ModelInfo, ValueInfo } from './metadata.js';
export { tensor, checkTensor, elementCount, isTensorType } from './tensor.js';
export type { Feeds, Outputs, PlainTensor, TensorArrays, TensorType } from './tensor.js';
export { stderrLogger } from './logger.js';
export type { Logger } from './logger.js';
export {
  ExecutionError,
  InputValidationError,
  ModelLoadError,
  ModelNotLoadedError,
  PoolClosedError,
  PoolUnavailableError,
  SessionReleasedError,
  UnknownOutputError,
  WorkerCrashedError,
} from './errors.js';
