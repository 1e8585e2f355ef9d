// Entry point of a session worker thread: owns ONNX Runtime sessions and runs requests one at a
// time, so the main thread never executes a model.
import { parentPort } from 'node:worker_threads';
import { ModelNotLoadedError, serializeError } from './errors.js';
import type { Logger } from './logger.js';
import { forTransfer } from './protocol.js';
import type { LoadResult, WorkerMessage, WorkerRequest } from './protocol.js';
import { createSession } from './session.js';
import type { Session } from './session.js';

if (parentPort === null) throw new Error('the session worker must be started as a worker thread');
const port = parentPort;
const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

const logger: Logger = {
  info: (fields, message) => post({ kind: 'log', level: 'info', fields, message }),
  warn: (fields, message) => post({ kind: 'log', level: 'warn', fields, message }),
};
const sessions = new Map<string, Session>();

async function release(key: string): Promise<void> {
  const session = sessions.get(key);
  sessions.delete(key);
  await session?.release();
}

async function handle(request: WorkerRequest): Promise<void> {
  try {
    switch (request.op) {
      case 'load': {
        await release(request.key);
        const session = await createSession(request.model, { ...request.options, logger });
        sessions.set(request.key, session);
        const result: LoadResult = {
          inputs: session.inputs,
          outputs: session.outputs,
          inputNames: session.inputNames,
          outputNames: session.outputNames,
          executionProviders: session.executionProviders,
        };
        post({ kind: 'reply', id: request.id, ok: true, result });
        return;
      }
      case 'run': {
        const session = sessions.get(request.key);
        if (session === undefined) throw new ModelNotLoadedError(request.key);
        const { tensors, transfer } = forTransfer(await session.run(request.feeds, request.outputNames), false);
        post({ kind: 'reply', id: request.id, ok: true, result: tensors }, transfer);
        return;
      }
      case 'unload':
        await release(request.key);
        post({ kind: 'reply', id: request.id, ok: true, result: null });
        return;
    }
  } catch (error) {
    post({ kind: 'reply', id: request.id, ok: false, error: serializeError(error) });
  }
}

// Requests are chained: a session runs on this thread anyway, and strict order lets the pool post a
// reload followed by runs without waiting for the reload's reply.
let queue = Promise.resolve();
port.on('message', (request: WorkerRequest) => {
  queue = queue.then(() => handle(request));
});
