import {
  FailedPreconditionError,
  InvalidArgumentError,
  MstarError,
  NotFoundError,
  UnavailableError,
} from '@mstar/errors';

/** A feed that does not match the model input it names (or names none): nothing was run. */
export class InputValidationError extends InvalidArgumentError {
  /** The input (feed) name concerned. */
  readonly input: string;
  readonly expected: string;
  readonly actual: string;

  constructor(input: string, expected: string, actual: string) {
    super(`input "${input}": expected ${expected}, got ${actual}`, { field: input });
    this.input = input;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Output names asked for that the model does not produce. */
export class UnknownOutputError extends InvalidArgumentError {
  readonly output: string;

  constructor(output: string, available: readonly string[]) {
    super(`output "${output}" is not produced by the model (outputs: ${available.join(', ')})`, { field: 'outputNames' });
    this.output = output;
  }
}

/** ONNX Runtime refused the model (invalid graph, unsupported op, unreadable file...). */
export class ModelLoadError extends FailedPreconditionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** ONNX Runtime failed while running a validated request, or produced something this library cannot carry. */
export class ExecutionError extends MstarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, options);
  }
}

/** The session was released; it cannot run again. */
export class SessionReleasedError extends FailedPreconditionError {
  constructor() {
    super('session was released');
  }
}

/** `pool.run` or `pool.unload` named a model key that was never loaded (or was unloaded). */
export class ModelNotLoadedError extends NotFoundError {
  readonly key: string;
  constructor(key: string) {
    super(`no model loaded under key "${key}"`);
    this.key = key;
  }
}

/** The worker thread serving a request died before answering; the pool replaces it. */
export class WorkerCrashedError extends UnavailableError {
  readonly worker: number;
  readonly exitCode: number;
  constructor(worker: number, exitCode: number, options?: { cause?: unknown }) {
    super(`session worker ${worker} exited with code ${exitCode} before answering`, options);
    this.worker = worker;
    this.exitCode = exitCode;
  }
}

/** The pool is closed (or closing) and takes no new requests. */
export class PoolClosedError extends UnavailableError {
  constructor() {
    super('session pool is closed');
  }
}

/** Every worker of the pool crashed repeatedly and was retired; nothing can serve requests. */
export class PoolUnavailableError extends UnavailableError {
  constructor() {
    super('every session worker crashed repeatedly and was not restarted');
  }
}

/** What crosses the worker boundary: structured clone drops classes and own fields of errors. */
export interface SerializedError {
  name: string;
  message: string;
  fields: Record<string, string | number>;
  cause?: SerializedError;
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, string | number> = {};
  for (const key of ['input', 'expected', 'actual', 'output', 'key'] as const) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string' || typeof value === 'number') fields[key] = value;
  }
  const out: SerializedError = { name: error.name, message: error.message, fields };
  if (error.cause !== undefined) out.cause = serializeError(error.cause);
  return out;
}

/** Rebuilds the typed error a worker threw, so pool callers can `instanceof` exactly as with a local session. */
export function reviveError(serialized: SerializedError): Error {
  const cause = serialized.cause === undefined ? undefined : reviveError(serialized.cause);
  const f = serialized.fields;
  let error: Error;
  switch (serialized.name) {
    case 'InputValidationError':
      error = new InputValidationError(String(f['input']), String(f['expected']), String(f['actual']));
      break;
    case 'UnknownOutputError':
      error = new UnknownOutputError(String(f['output']), []);
      break;
    case 'ModelNotLoadedError':
      error = new ModelNotLoadedError(String(f['key']));
      break;
    case 'ModelLoadError':
      error = new ModelLoadError(serialized.message, { cause });
      break;
    case 'ExecutionError':
      error = new ExecutionError(serialized.message, { cause });
      break;
    case 'SessionReleasedError':
      error = new SessionReleasedError();
      break;
    default:
      error = new Error(serialized.message, { cause });
      error.name = serialized.name;
  }
  // The message is authoritative (e.g. UnknownOutputError lists outputs the fields do not carry).
  error.message = serialized.message;
  return error;
}
