import { CancelledError } from '@mstar/errors';
import { createRng, deriveSeed } from '@mstar/metrics';
import { buildPolicyTrainingGraph, buildSftBatch, initWeights, paramSpecs, preprocessImage } from '@mstar/models';
import type { ModelConfig, ModelWeights } from '@mstar/models';
import { ParamStore } from '@mstar/optim';
import type { LrSchedule } from '@mstar/optim';
import type { Feeds } from '@mstar/runtime';
import { createTrainer } from '@mstar/training';
import type { TrainerRuntime } from '@mstar/training';
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

/** The feeds of the policy SFT graph for a batch of examples (right-padded). */
export function sftFeeds(examples: readonly SftExample[], config: ModelConfig): Feeds {
  const batch = buildSftBatch(examples, config, 'right');
  const size = config.vision.imageSize;
  const per = config.vision.channels * size * size;
  const pixels = new Float32Array(examples.length * per);
  examples.forEach((ex, i) => pixels.set(ex.pixels, i * per));
  const dims = [batch.batch, batch.seq];
  return {
    pixel_values: { type: 'float32', dims: [examples.length, config.vision.channels, size, size], data: pixels },
    input_ids: { type: 'int64', dims, data: batch.inputIds },
    attention_mask: { type: 'int64', dims, data: batch.attentionMask },
    targets: { type: 'int64', dims, data: batch.targets },
    loss_weights: { type: 'float32', dims, data: batch.lossWeights },
  };
}

export interface WarmupProgress {
  readonly step: number;
  readonly totalSteps: number;
  readonly epoch: number;
  readonly loss: number;
  readonly lr: number;
  /** Real (unpadded) tokens in this step's batch. */
  readonly tokens: number;
  readonly tokensPerSecond: number;
  readonly elapsedMs: number;
  readonly etaMs: number;
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

export interface WarmupResult {
  readonly weights: ModelWeights;
  /** The trainer's checkpoint (params + AdamW moments + schedule), to continue training from. */
  readonly optimizerState: Uint8Array;
  readonly steps: number;
  /** Token-weighted mean loss of the last epoch. */
  readonly lastEpochLoss: number;
  readonly firstLoss: number;
  readonly seconds: number;
  readonly tokensPerSecond: number;
}

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

/** Supervised warm-up of a policy on gold responses (method stage 1): pi_0 and its optimizer state. */
export async function warmup(options: WarmupOptions): Promise<WarmupResult> {
  const { config, examples, batchSize, epochs } = options;
  if (examples.length === 0) throw new RecipeConfigError('warm-up needs at least one example', { field: 'examples' });
  if (!Number.isInteger(epochs) || epochs < 1) throw new RecipeConfigError(`epochs must be an integer >= 1, got ${epochs}`, { field: 'epochs' });
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RecipeConfigError(`batchSize must be an integer >= 1, got ${batchSize}`, { field: 'batchSize' });
  const lengths = examples.map((e) => e.prompt.length + e.response.length);
  const stepsPerEpoch = Math.ceil(examples.length / batchSize);
  const totalSteps = stepsPerEpoch * epochs;

  const specs = paramSpecs(config, 'policy');
  const initial = options.initialWeights ?? initWeights(config, 'policy', options.seed);
  const params = ParamStore.fromTensors(Object.fromEntries(specs.map((s) => [s.name, { shape: s.shape, data: initial.get(s.name)! }])));
  const { graph, training } = buildPolicyTrainingGraph(config);
  const realTokens = (feeds: Feeds): number => (feeds.attention_mask!.data as BigInt64Array).reduce((n, m) => n + Number(m), 0);
  const trainer = await createTrainer({
    model: graph,
    training,
    params,
    optimizer: {
      schedule: scheduleOf(options, totalSteps),
      weightDecay: options.weightDecay ?? 0.01,
      noDecay: (name) => name.endsWith('norm.weight') || name.includes('layer_norm') || name.endsWith('.bias'),
    },
    clipNorm: options.clipNorm ?? 1,
    runtime: options.runtime ?? { kind: 'session', device: 'cpu', intraOpThreads: 2 },
    tokensOf: realTokens,
  });
  const started = performance.now();
  let tokensSeen = 0;
  let firstLoss = Number.NaN;
  let lastEpochLoss = Number.NaN;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      let lossSum = 0;
      let tokenSum = 0;
      for (const batch of epochBatches(lengths, batchSize, options.seed, epoch)) {
        if (options.signal?.aborted === true) throw new CancelledError('warm-up was cancelled', { cause: options.signal.reason });
        const result = await trainer.step([sftFeeds(batch.map((i) => examples[i]!), config)]);
        if (result.step === 1) firstLoss = result.loss;
        lossSum += result.loss * result.tokens;
        tokenSum += result.tokens;
        tokensSeen += result.tokens;
        const elapsedMs = performance.now() - started;
        options.onProgress?.({
          step: result.step,
          totalSteps,
          epoch,
          loss: result.loss,
          lr: result.lr,
          tokens: result.tokens,
          tokensPerSecond: tokensSeen / (elapsedMs / 1000),
          elapsedMs,
          etaMs: (elapsedMs / result.step) * (totalSteps - result.step),
        });
      }
      lastEpochLoss = lossSum / tokenSum;
    }
    const seconds = (performance.now() - started) / 1000;
    const weights: ModelWeights = new Map(specs.map((s) => [s.name, trainer.params.view(s.name).slice()]));
    return { weights, optimizerState: trainer.save(), steps: trainer.steps, lastEpochLoss, firstLoss, seconds, tokensPerSecond: tokensSeen / seconds };
  } finally {
    await trainer.close();
  }
}
