import { GraphBuilder, toModel } from '@mstar/graph';
import type { TrainingGraph } from '@mstar/graph';
import { AdamW, GradAccumulator, NonFiniteGradientError, ParamStore, clipGradNorm, globalNorm } from '@mstar/optim';
import type { AdamWOptions } from '@mstar/optim';
import { createSession, elementCount } from '@mstar/runtime';
import type { Device, Feeds, Logger, Outputs, PlainTensor, Session, SessionPool, ValueInfo } from '@mstar/runtime';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.js';
import { TrainerConfigError, TrainerStateError, TrainingBatchError } from './errors.js';

/** Where the training graph runs. */
export type TrainerRuntime =
  /** In this thread: `run` blocks the event loop for the whole forward+backward. */
  | { kind: 'session'; device?: Device; intraOpThreads?: number; logger?: Logger }
  /**
   * In a worker pool (the event loop stays free). The model is loaded under `key` (default a unique
   * one) and unloaded by `close`; the pool itself stays the caller's.
   */
  | { kind: 'pool'; pool: SessionPool; key?: string };

export interface TrainerOptions {
  /** The training graph: ONNX bytes or path (params as graph inputs), or the builder after `buildTrainingGraph`. */
  model: Uint8Array | string | GraphBuilder;
  /** What `buildTrainingGraph` returned: the loss output and one gradient output per parameter. */
  training: TrainingGraph;
  /** Initial parameters; COPIED into the trainer's own store (`trainer.params`), whose layout must name exactly the graph's parameters. */
  params: ParamStore;
  optimizer: AdamWOptions;
  /** Global-norm gradient clipping threshold (PyTorch's `clip_grad_norm_`); none when undefined. */
  clipNorm?: number;
  /** Micro-batches per optimizer step (gradient accumulation); `step` must get exactly this many. Default 1. */
  microBatchesPerStep?: number;
  runtime: TrainerRuntime;
  /**
   * Tokens in a micro-batch: reported per step and used to weight micro-batch gradients (each by its
   * share of the step's tokens, which reproduces the full-batch gradient of a per-token mean loss).
   * Default: the element count of the first int64 feed (the token ids).
   */
  tokensOf?: (feeds: Feeds) => number;
  onProgress?: (event: TrainerEvent) => void;
}

/** Milliseconds spent per phase of one step. */
export interface StepTimings {
  /** Forward+backward of every micro-batch, as the caller sees it (with the pool: including the param copy to the worker and the transfer of gradients back). */
  graphMs: number;
  /** Summing the per-parameter gradient outputs into the flat accumulator (and the final weighting). */
  accumulateMs: number;
  /** Global norm and clipping. */
  clipMs: number;
  /** The AdamW update. */
  optimizerMs: number;
  totalMs: number;
}

export interface StepResult {
  /** Optimizer steps applied so far, this one included. */
  step: number;
  /** Token-weighted mean of the micro-batch losses. */
  loss: number;
  /** Global L2 norm of the accumulated gradient before clipping. */
  gradNorm: number;
  /** Learning rate this step used. */
  lr: number;
  tokens: number;
  timings: StepTimings;
}

export type TrainerEvent =
  | { kind: 'micro-batch'; step: number; index: number; loss: number; tokens: number; ms: number }
  | ({ kind: 'step' } & StepResult);

export interface Trainer {
  /** The live parameters, updated in place by every step (do not write to them while a step runs). */
  readonly params: ParamStore;
  readonly optimizer: AdamW;
  readonly microBatchesPerStep: number;
  /** Optimizer steps applied so far. */
  readonly steps: number;
  /**
   * One optimizer step: forward+backward per micro-batch, token-weighted gradient accumulation, clipping,
   * AdamW. A non-finite gradient throws `NonFiniteGradientError` (from @mstar/optim) and leaves params and
   * optimizer untouched, so the caller can skip the batch and go on.
   */
  step(batches: readonly Feeds[]): Promise<StepResult>;
  /** Params and the complete optimizer state as ONE safetensors file (see `load`). */
  save(): Uint8Array;
  /** Replaces params, optimizer state and clip threshold with a checkpoint from `save`; training then continues bit for bit. */
  load(checkpoint: Uint8Array): void;
  /** Releases the session (or unloads the model from the pool). */
  close(): Promise<void>;
}

interface GraphRunner {
  readonly inputs: readonly ValueInfo[];
  /** How many runs can usefully be in flight at once. */
  readonly parallelism: number;
  run(feeds: Feeds, outputNames: readonly string[]): Promise<Outputs>;
  close(): Promise<void>;
}

let poolKeys = 0;

async function openRunner(model: Uint8Array | string, runtime: TrainerRuntime): Promise<GraphRunner> {
  if (runtime.kind === 'session') {
    const options: Parameters<typeof createSession>[1] = { device: runtime.device ?? 'cpu' };
    if (runtime.intraOpThreads !== undefined) options.intraOpThreads = runtime.intraOpThreads;
    if (runtime.logger !== undefined) options.logger = runtime.logger;
    const session: Session = await createSession(model, options);
    return { inputs: session.inputs, parallelism: 1, run: (feeds, names) => session.run(feeds, names), close: () => session.release() };
  }
  const { pool } = runtime;
  const key = runtime.key ?? `mstar.trainer.${process.pid}.${++poolKeys}`;
  const loaded = await pool.load(key, model);
  return {
    inputs: loaded.inputs,
    parallelism: pool.size,
    // `copy`: structured cloning copies the flat parameter buffer ONCE per run (every param view shares it)
    // and leaves the caller's batch arrays usable; transferring would copy each param view separately.
    run: (feeds, names) => pool.run(key, feeds, names, { copy: true }),
    close: () => pool.unload(key),
  };
}

function firstInt64Count(feeds: Feeds): number {
  for (const t of Object.values(feeds)) if (t.type === 'int64') return elementCount(t.dims);
  throw new TrainingBatchError('micro-batch has no int64 feed to count tokens from; pass tokensOf');
}

function scalarOf(name: string, t: PlainTensor | undefined): number {
  if (t === undefined || (t.type !== 'float32' && t.type !== 'float64') || t.data.length !== 1) {
    throw new TrainingBatchError(`graph output "${name}" must be a float scalar, got ${t === undefined ? 'nothing' : `${t.type} [${t.dims.join(', ')}]`}`);
  }
  return Number(t.data[0]);
}

function checkGraphParams(training: TrainingGraph, store: ParamStore, inputs: readonly ValueInfo[]): void {
  const layout = store.layout;
  const missing = layout.entries.filter((e) => !training.gradOutputs.has(e.name)).map((e) => e.name);
  const extra = [...training.gradOutputs.keys()].filter((n) => !layout.has(n));
  if (missing.length > 0 || extra.length > 0) {
    throw new TrainerConfigError(
      `parameter layout and training graph disagree: ${missing.length > 0 ? `no gradient output for ${missing.slice(0, 8).join(', ')}` : ''}${missing.length > 0 && extra.length > 0 ? '; ' : ''}${extra.length > 0 ? `not in the layout: ${extra.slice(0, 8).join(', ')}` : ''}`,
    );
  }
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const entry of layout.entries) {
    const input = byName.get(entry.name);
    if (input === undefined) throw new TrainerConfigError(`parameter "${entry.name}" is not an input of the training graph (build it with toModel(g, { params: 'inputs' }))`);
    if (input.type !== 'float32' || input.dims.length !== entry.shape.length || input.dims.some((d, i) => d !== entry.shape[i])) {
      throw new TrainerConfigError(`graph input "${entry.name}" is ${input.type} [${input.dims.join(', ')}] but the layout has float32 [${entry.shape.join(', ')}]`);
    }
  }
}

/** Creates a trainer for any graph made by `buildTrainingGraph` (see TrainerOptions). */
export async function createTrainer(options: TrainerOptions): Promise<Trainer> {
  const microBatches = options.microBatchesPerStep ?? 1;
  if (!Number.isSafeInteger(microBatches) || microBatches < 1) throw new TrainerConfigError(`microBatchesPerStep must be an integer >= 1, got ${microBatches}`);
  if (options.clipNorm !== undefined && !(options.clipNorm > 0 && Number.isFinite(options.clipNorm))) {
    throw new TrainerConfigError(`clipNorm must be a finite number > 0, got ${options.clipNorm}`);
  }
  const layout = options.params.layout;
  let optimizer = new AdamW(layout, options.optimizer);
  const params = new ParamStore(layout, options.params.data.slice());
  const model = options.model instanceof GraphBuilder ? toModel(options.model, { params: 'inputs' }) : options.model;
  const runner = await openRunner(model, options.runtime);
  try {
    checkGraphParams(options.training, params, runner.inputs);
  } catch (error) {
    await runner.close();
    throw error;
  }

  let clipNorm = options.clipNorm;
  const tokensOf = options.tokensOf ?? firstInt64Count;
  const { lossOutput } = options.training;
  const gradOutputs = layout.entries.map((e) => [e, options.training.gradOutputs.get(e.name)!] as const);
  const outputNames = [lossOutput, ...gradOutputs.map(([, name]) => name)];
  // Views into the flat store: fed without copying (in-thread) or cloned as one buffer (pool).
  const paramFeeds: Record<string, PlainTensor> = {};
  for (const entry of layout.entries) paramFeeds[entry.name] = { type: 'float32', dims: entry.shape, data: params.view(entry.name) };
  const accumulator = new GradAccumulator(layout.size);
  let busy = false;
  let closed = false;

  const guard = (what: string): void => {
    if (closed) throw new TrainerStateError(`cannot ${what}: the trainer is closed`);
    if (busy) throw new TrainerStateError(`cannot ${what} while a step is running`);
  };

  async function runMicroBatch(batch: Feeds, index: number): Promise<{ outputs: Outputs; ms: number }> {
    for (const name of Object.keys(batch)) {
      if (Object.hasOwn(paramFeeds, name)) throw new TrainingBatchError(`micro-batch ${index} feeds "${name}", which is a parameter the trainer feeds itself`);
    }
    const t0 = performance.now();
    const outputs = await runner.run({ ...batch, ...paramFeeds }, outputNames);
    return { outputs, ms: performance.now() - t0 };
  }

  async function step(batches: readonly Feeds[]): Promise<StepResult> {
    guard('step');
    if (batches.length !== microBatches) throw new TrainingBatchError(`step got ${batches.length} micro-batches, the trainer is configured for ${microBatches}`);
    busy = true;
    const started = performance.now();
    try {
      const stepIndex = optimizer.steps + 1;
      const tokens = batches.map((b) => tokensOf(b));
      const total = tokens.reduce((a, b) => a + b, 0);
      if (!(total > 0)) throw new TrainingBatchError(`micro-batches hold ${total} tokens in all; a step needs at least one`);
      accumulator.reset();
      let loss = 0;
      let graphMs = 0;
      let accumulateMs = 0;
      // Results are accumulated in micro-batch order, so the sum is the same however many run at once.
      for (let first = 0; first < microBatches; first += runner.parallelism) {
        const window = batches.slice(first, first + runner.parallelism);
        const w0 = performance.now();
        const results = await Promise.all(window.map((b, i) => runMicroBatch(b, first + i)));
        graphMs += performance.now() - w0;
        for (const [i, { outputs, ms }] of results.entries()) {
          const index = first + i;
          const share = microBatches === 1 ? 1 : tokens[index]! / total;
          const microLoss = scalarOf(lossOutput, outputs[lossOutput]);
          loss += share * microLoss;
          const a0 = performance.now();
          accumulator.addPieces(
            gradOutputs.map(([entry, name]) => {
              const grad = outputs[name];
              if (grad === undefined || grad.type !== 'float32' || grad.data.length !== entry.size) {
                throw new TrainingBatchError(`gradient output "${name}" is ${grad === undefined ? 'missing' : `${grad.type} with ${grad.data.length} elements`}, expected float32 with ${entry.size}`);
              }
              return [entry.offset, grad.data] as const;
            }),
            share,
          );
          accumulateMs += performance.now() - a0;
          options.onProgress?.({ kind: 'micro-batch', step: stepIndex, index, loss: microLoss, tokens: tokens[index]!, ms });
        }
      }
      const grads = accumulator.finish(1);

      const c0 = performance.now();
      const gradNorm = clipNorm === undefined ? globalNorm(grads) : clipGradNorm(grads, clipNorm);
      if (!Number.isFinite(gradNorm)) throw new NonFiniteGradientError(gradNorm);
      const o0 = performance.now();
      const lr = optimizer.step(params.data, grads);
      const end = performance.now();
      const result: StepResult = {
        step: optimizer.steps,
        loss,
        gradNorm,
        lr,
        tokens: total,
        timings: { graphMs, accumulateMs, clipMs: o0 - c0, optimizerMs: end - o0, totalMs: end - started },
      };
      options.onProgress?.({ kind: 'step', ...result });
      return result;
    } finally {
      busy = false;
    }
  }

  return {
    params,
    get optimizer() {
      return optimizer;
    },
    microBatchesPerStep: microBatches,
    get steps() {
      return optimizer.steps;
    },
    step,
    save() {
      guard('save');
      return encodeCheckpoint(params, optimizer, clipNorm);
    },
    load(checkpoint) {
      guard('load');
      const restored = decodeCheckpoint(checkpoint, layout);
      params.data.set(restored.params.data);
      optimizer = restored.optimizer;
      clipNorm = restored.clipNorm;
    },
    async close() {
      if (closed) return;
      guard('close');
      closed = true;
      await runner.close();
    },
  };
}
