import { CancelledError } from '@mstar/errors';
import { createRng, deriveSeed } from '@mstar/metrics';
import { buildPolicyTrainingGraph, buildSftBatch, initWeights, numImageTokens, paramSpecs, preprocessImage } from '@mstar/models';
import type { ModelConfig, ModelKind, ModelTrainingGraph, ModelWeights } from '@mstar/models';
import { ParamLayout, ParamStore } from '@mstar/optim';
import type { LrSchedule } from '@mstar/optim';
import type { Feeds } from '@mstar/runtime';
import { createTrainer, decodeCheckpoint } from '@mstar/training';
import type { Trainer, TrainerRuntime } from '@mstar/training';
import type { TextTokenizer } from '@mstar/world';
import { RecipeConfigError } from './errors.js';
import { promptIds, responseIds } from './items.js';
import type { EvalItem } from './items.js';

/** One SFT example in model terms: raw prompt ids (one `<image>`), response ids (with `</s>`), pixels [3, H, W]. */
export interface SftExample {
  readonly prompt: readonly number[];
  readonly response: readonly number[];
  readonly pixels: Float32Array;
}

/** SFT examples from items with gold responses (the response tokens only are learned). */
export function sftExamples(items: readonly EvalItem[], tokenizer: TextTokenizer, config: ModelConfig): SftExample[] {
  return items.map((item) => ({ prompt: promptIds(tokenizer, item.question), response: responseIds(tokenizer, item), pixels: preprocessImage(item.image, config) }));
}

/** pixel_values [batch, C, H, W] of a batch of examples. */
export function pixelFeed(examples: readonly { readonly pixels: Float32Array }[], config: ModelConfig): Feeds[string] {
  const size = config.vision.imageSize;
  const per = config.vision.channels * size * size;
  const pixels = new Float32Array(examples.length * per);
  examples.forEach((ex, i) => pixels.set(ex.pixels, i * per));
  return { type: 'float32', dims: [examples.length, config.vision.channels, size, size], data: pixels };
}

/** The feeds of the policy SFT graph for a batch of examples (right-padded). */
export function sftFeeds(examples: readonly SftExample[], config: ModelConfig): Feeds {
  const batch = buildSftBatch(examples, config, 'right');
  const dims = [batch.batch, batch.seq];
  return {
    pixel_values: pixelFeed(examples, config),
    input_ids: { type: 'int64', dims, data: batch.inputIds },
    attention_mask: { type: 'int64', dims, data: batch.attentionMask },
    targets: { type: 'int64', dims, data: batch.targets },
    loss_weights: { type: 'float32', dims, data: batch.lossWeights },
  };
}

/** One optimizer step of an SFT or PRM run. */
export interface SftProgress {
  /** Steps of this run so far, 1..totalSteps. */
  readonly step: number;
  readonly totalSteps: number;
  /** The optimizer's step count: equals `step` for a fresh optimizer, runs on from the saved count when resuming. */
  readonly optimizerStep: number;
  readonly epoch: number;
  readonly loss: number;
  readonly lr: number;
  /** Real (unpadded) tokens in this step's batch. */
  readonly tokens: number;
  /** Examples consumed so far in this run, counting repeats over epochs. */
  readonly examplesSeen: number;
  readonly tokensPerSecond: number;
  readonly elapsedMs: number;
  readonly etaMs: number;
}

/** The progress of a warm-up (the same events as any SFT run). */
export type WarmupProgress = SftProgress;

/** Settings of the optimizer a run creates when it does not resume a saved one. */
export interface FreshOptimizer {
  readonly schedule: LrSchedule;
  /** Decoupled weight decay (not on norms and biases). Default 0.01. */
  readonly weightDecay?: number;
  /** Global-norm gradient clip; 0 turns clipping off. Default 1. */
  readonly clipNorm?: number;
}

/**
 * Policy SFT from a starting point: the warm-up (fresh weights, fresh optimizer) and every
 * self-evolving iteration (the last or the initial policy's weights, with a fresh optimizer or the
 * one saved with those weights).
 */
export interface SftOptions {
  readonly config: ModelConfig;
  readonly examples: readonly SftExample[];
  readonly epochs: number;
  readonly batchSize: number;
  /** The optimizer to create; ignored when `resume` is given (the saved one carries its own schedule and position). */
  readonly optimizer: FreshOptimizer;
  /** Seeds the data order (each epoch a shuffle from it) and, without `initialWeights` or `resume`, the initial weights. */
  readonly seed: number;
  /** Weights to start from with a fresh optimizer. */
  readonly initialWeights?: ModelWeights;
  /**
   * A trainer checkpoint (`optimizerState` of an earlier result): training continues from its
   * weights AND its optimizer (AdamW moments, step count, schedule position, clip threshold).
   * Exclusive with `initialWeights`.
   */
  readonly resume?: Uint8Array;
  /** Default in-thread with 2 intra-op threads (see the README for why not the pool). */
  readonly runtime?: TrainerRuntime;
  /** Checked before every step: an abort ends the run with `CancelledError` after the step in flight. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: SftProgress) => void;
}

export interface SftResult {
  readonly weights: ModelWeights;
  /** The trainer's checkpoint (params + AdamW moments + schedule position), to continue training from (`resume`). */
  readonly optimizerState: Uint8Array;
  /** Optimizer steps taken by this run. */
  readonly steps: number;
  /** The optimizer's step count at the end (`steps` plus the resumed count). */
  readonly optimizerStep: number;
  readonly examplesSeen: number;
  /** Loss of this run's first and last step. */
  readonly firstLoss: number;
  readonly lastLoss: number;
  /** Learning rate of the last step. */
  readonly lastLr: number;
  /** Mean loss of the last epoch, each step weighted by its loss weights (learned tokens, labelled steps). */
  readonly lastEpochLoss: number;
  readonly seconds: number;
  readonly tokensPerSecond: number;
}

export interface WarmupOptions {
  readonly config: ModelConfig;
  readonly examples: readonly SftExample[];
  readonly epochs: number;
  readonly batchSize: number;
  /** Peak learning rate. */
  readonly lr: number;
  /** `cosine` (default): linear warm-up, cosine decay to minLrRatio x lr; `constant`: warm-up then flat. */
  readonly schedule?: 'cosine' | 'constant';
  /** Default: 5% of the steps. */
  readonly warmupSteps?: number;
  /** Default 0.1. */
  readonly minLrRatio?: number;
  /** Default 0.01 (not on norms and biases). */
  readonly weightDecay?: number;
  /** Default 1. */
  readonly clipNorm?: number;
  /** Seeds the initial weights (unless given) and the shuffling. */
  readonly seed: number;
  readonly initialWeights?: ModelWeights;
  /** Default in-thread with 2 intra-op threads (see the README for why not the pool). */
  readonly runtime?: TrainerRuntime;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: WarmupProgress) => void;
}

export type WarmupResult = SftResult;

function scheduleOf(options: WarmupOptions, totalSteps: number): LrSchedule {
  const warmupSteps = options.warmupSteps ?? Math.max(1, Math.round(totalSteps * 0.05));
  if ((options.schedule ?? 'cosine') === 'constant' || totalSteps <= warmupSteps) return { kind: 'linear-warmup', lr: options.lr, warmupSteps };
  return { kind: 'warmup-cosine', lr: options.lr, warmupSteps, totalSteps, minLr: options.lr * (options.minLrRatio ?? 0.1) };
}

// Batches are cut from windows of this many batches sorted by length, so rows of a batch have
// similar lengths and little padding (in-domain sequences run from ~40 to ~70 tokens).
const BUCKET_WINDOW = 8;

/** Batches of one epoch: a seeded shuffle, length-sorted within windows, cut into batchSize pieces, batch order shuffled again. */
function epochBatches(lengths: readonly number[], batchSize: number, seed: number, epoch: number): number[][] {
  const rng = createRng(deriveSeed(seed, 'warmup-epoch', epoch));
  const order = rng.shuffle(Array.from({ length: lengths.length }, (_, i) => i));
  const out: number[][] = [];
  const window = batchSize * BUCKET_WINDOW;
  for (let w = 0; w < order.length; w += window) {
    // A stable sort: equal lengths keep their shuffled order, so equal-length data still gets fresh batches each epoch.
    const sorted = order.slice(w, w + window).sort((a, b) => lengths[a]! - lengths[b]!);
    for (let i = 0; i < sorted.length; i += batchSize) out.push(sorted.slice(i, i + batchSize));
  }
  return rng.shuffle(out);
}

// The helpers from here to `trainEpochs` are shared with prm.ts (the PRM runs the same loop on
// its own graph); the package entry exports only the recipes built on them.

const noDecay = (name: string): boolean => name.endsWith('norm.weight') || name.includes('layer_norm') || name.endsWith('.bias');
const sumOf = (data: ArrayLike<number | bigint>): number => {
  let n = 0;
  for (let i = 0; i < data.length; i++) n += Number(data[i]);
  return n;
};
const realTokens = (feeds: Feeds): number => sumOf(feeds['attention_mask']!.data);

export function checkRunSizes(examples: number, epochs: number, batchSize: number, what: string, minExamples = 1): void {
  if (examples < minExamples) throw new RecipeConfigError(`${what} needs at least one example`, { field: 'examples' });
  if (!Number.isInteger(epochs) || epochs < 1) throw new RecipeConfigError(`epochs must be an integer >= 1, got ${epochs}`, { field: 'epochs' });
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RecipeConfigError(`batchSize must be an integer >= 1, got ${batchSize}`, { field: 'batchSize' });
}

/**
 * Throws RecipeConfigError naming the first example whose image-expanded prompt plus response
 * does not fit in the model's context (the graph could not place it).
 */
export function checkFits(examples: readonly { readonly prompt: readonly number[]; readonly response: readonly number[] }[], config: ModelConfig, what: string): void {
  const context = config.text.maxPositionEmbeddings;
  const extra = numImageTokens(config) - 1;
  examples.forEach((e, i) => {
    const length = e.prompt.length + extra + e.response.length;
    if (length > context) throw new RecipeConfigError(`${what} ${i + 1} takes ${length} positions, more than the model's ${context}`, { field: 'examples' });
  });
}

/** Where a run starts: its parameters, and the optimizer state to restore (when resuming). */
export interface RunStart {
  readonly params: ParamStore;
  readonly resume?: Uint8Array;
}

/**
 * The parameter store a run starts from: the resumed checkpoint's params, the given weights, or
 * fresh ones from `seed`.
 */
export function runStart(config: ModelConfig, kind: ModelKind, options: { initialWeights?: ModelWeights; resume?: Uint8Array; seed: number }): RunStart {
  const specs = paramSpecs(config, kind);
  if (options.resume !== undefined) {
    if (options.initialWeights !== undefined) throw new RecipeConfigError('give initialWeights or resume, not both: a resumed run starts from the saved weights', { field: 'initialWeights' });
    const layout = new ParamLayout(specs.map((s) => [s.name, s.shape] as const));
    return { params: decodeCheckpoint(options.resume, layout).params, resume: options.resume };
  }
  const initial = options.initialWeights ?? initWeights(config, kind, options.seed);
  return { params: ParamStore.fromTensors(Object.fromEntries(specs.map((s) => [s.name, { shape: s.shape, data: initial.get(s.name)! }]))) };
}

/** What `trainEpochs` needs besides the trainer. */
export interface EpochLoop<E> {
  readonly examples: readonly E[];
  /** Sequence length of each example (batches group similar lengths). */
  readonly lengths: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly feeds: (batch: readonly E[]) => Feeds;
  /** Names the run in the cancellation message. */
  readonly what: string;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: SftProgress) => void) | undefined;
}

/**
 * Opens a trainer on a model training graph from a run start (restoring the optimizer when
 * resuming). `tokensOf` counts a batch's tokens (default: the real tokens of its attention mask).
 */
export async function openTrainer(
  graph: ModelTrainingGraph,
  start: RunStart,
  optimizer: FreshOptimizer,
  runtime: TrainerRuntime | undefined,
  tokensOf: (feeds: Feeds) => number = realTokens,
): Promise<Trainer> {
  const clipNorm = optimizer.clipNorm ?? 1;
  const trainer = await createTrainer({
    model: graph.graph,
    training: graph.training,
    params: start.params,
    optimizer: { schedule: optimizer.schedule, weightDecay: optimizer.weightDecay ?? 0.01, noDecay },
    ...(clipNorm > 0 ? { clipNorm } : {}),
    runtime: runtime ?? { kind: 'session', device: 'cpu', intraOpThreads: 2 },
    tokensOf,
  });
  if (start.resume !== undefined) {
    try {
      trainer.load(start.resume);
    } catch (err) {
      await trainer.close();
      throw err;
    }
  }
  return trainer;
}

/**
 * The epochs of one run on an open trainer, then its weights and optimizer state; closes the
 * trainer. The loss of each step is the graph's weighted mean, so the epoch loss weighs each step
 * by the sum of its loss weights.
 */
export async function trainEpochs<E>(trainer: Trainer, kind: ModelKind, config: ModelConfig, loop: EpochLoop<E>): Promise<SftResult> {
  const stepsPerEpoch = Math.ceil(loop.examples.length / loop.batchSize);
  const totalSteps = stepsPerEpoch * loop.epochs;
  const started = performance.now();
  let tokensSeen = 0;
  let examplesSeen = 0;
  let steps = 0;
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let lastLr = Number.NaN;
  let lastEpochLoss = Number.NaN;
  try {
    for (let epoch = 0; epoch < loop.epochs; epoch++) {
      let lossSum = 0;
      let weightSum = 0;
      for (const batch of epochBatches(loop.lengths, loop.batchSize, loop.seed, epoch)) {
        if (loop.signal?.aborted === true) throw new CancelledError(`${loop.what} was cancelled`, { cause: loop.signal.reason });
        const feeds = loop.feeds(batch.map((i) => loop.examples[i]!));
        const weight = sumOf(feeds['loss_weights']!.data);
        const result = await trainer.step([feeds]);
        steps++;
        if (steps === 1) firstLoss = result.loss;
        lastLoss = result.loss;
        lastLr = result.lr;
        lossSum += result.loss * weight;
        weightSum += weight;
        tokensSeen += result.tokens;
        examplesSeen += batch.length;
        const elapsedMs = performance.now() - started;
        loop.onProgress?.({
          step: steps,
          totalSteps,
          optimizerStep: result.step,
          epoch,
          loss: result.loss,
          lr: result.lr,
          tokens: result.tokens,
          examplesSeen,
          tokensPerSecond: tokensSeen / (elapsedMs / 1000),
          elapsedMs,
          etaMs: (elapsedMs / steps) * (totalSteps - steps),
        });
      }
      lastEpochLoss = lossSum / weightSum;
    }
    const seconds = (performance.now() - started) / 1000;
    const weights: ModelWeights = new Map(paramSpecs(config, kind).map((s) => [s.name, trainer.params.view(s.name).slice()]));
    return {
      weights,
      optimizerState: trainer.save(),
      steps,
      optimizerStep: trainer.steps,
      examplesSeen,
      firstLoss,
      lastLoss,
      lastLr,
      lastEpochLoss,
      seconds,
      tokensPerSecond: tokensSeen / seconds,
    };
  } finally {
    await trainer.close();
  }
}

/**
 * Policy SFT (method stages 1 and 3): trains from `initialWeights`, `resume` or fresh weights; see
 * SftOptions. Without examples it takes no step and returns the start and its optimizer state.
 */
export async function sft(options: SftOptions): Promise<SftResult> {
  const { config, examples, batchSize, epochs } = options;
  // An empty dataset (no correct sample in a whole slice) is a legitimate iteration: no step, the start comes back.
  checkRunSizes(examples.length, epochs, batchSize, 'SFT', 0);
  checkFits(examples, config, 'SFT example');
  const start = runStart(config, 'policy', options);
  const trainer = await openTrainer(buildPolicyTrainingGraph(config), start, options.optimizer, options.runtime);
  return trainEpochs(trainer, 'policy', config, {
    examples,
    lengths: examples.map((e) => e.prompt.length + e.response.length),
    epochs,
    batchSize,
    seed: options.seed,
    feeds: (batch) => sftFeeds(batch, config),
    what: 'SFT',
    signal: options.signal,
    onProgress: options.onProgress,
  });
}

/** Supervised warm-up of a policy on gold responses (method stage 1): pi_0 and its optimizer state, with a warm-up + cosine (or flat) schedule. */
export async function warmup(options: WarmupOptions): Promise<WarmupResult> {
  const { examples, batchSize, epochs } = options;
  checkRunSizes(examples.length, epochs, batchSize, 'warm-up');
  const totalSteps = Math.ceil(examples.length / batchSize) * epochs;
  return sft({
    config: options.config,
    examples,
    epochs,
    batchSize,
    optimizer: { schedule: scheduleOf(options, totalSteps), weightDecay: options.weightDecay ?? 0.01, clipNorm: options.clipNorm ?? 1 },
    seed: options.seed,
    initialWeights: options.initialWeights,
    runtime: options.runtime,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}
