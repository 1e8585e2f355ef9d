import { splitSteps, STEP_SEPARATOR } from '@mstar/cot';
import { InvalidArgumentError } from '@mstar/errors';
import { buildPrmBatch, buildPrmTrainingGraph, exportOnnx, GRAPH_IO, ONNX_FILES, preprocessImage, stepBoundaries } from '@mstar/models';
import type { ModelConfig, ModelWeights } from '@mstar/models';
import { createSession } from '@mstar/runtime';
import type { Device, Feeds } from '@mstar/runtime';
import type { TrainerRuntime } from '@mstar/training';
import type { TextTokenizer } from '@mstar/world';
import { promptIds } from './items.js';
import type { EvalItem } from './items.js';
import type { PrmTrajectory } from './run.js';
import { checkFits, checkRunSizes, openTrainer, pixelFeed, runStart, trainEpochs } from './warmup.js';
import type { FreshOptimizer, SftProgress, SftResult } from './warmup.js';

/**
 * The tokens a PRM reads for a response: its steps (`@mstar/cot` splitSteps, the blocks before
 * `# Answer`) joined by the step separator, so `stepBoundaries` finds exactly one boundary per
 * step (the separator after each step, the last token for the final one). The answer block is
 * left out: the model is causal, so it could not change any step's score. Empty without steps.
 * Training and scoring must both read responses this way.
 */
export function prmResponseIds(tokenizer: TextTokenizer, response: string): number[] {
  const steps = splitSteps(response);
  return steps.length === 0 ? [] : tokenizer.encode(steps.join(STEP_SEPARATOR));
}

/** One PRM training example: prompt ids (one `<image>`), the response's step tokens, one soft label per step, pixels [3, H, W]. */
export interface PrmTrainingExample {
  readonly prompt: readonly number[];
  readonly response: readonly number[];
  readonly labels: readonly number[];
  readonly pixels: Float32Array;
}

/**
 * PRM examples from labelled trajectories, looking each prompt up by id. Throws
 * InvalidArgumentError naming the trajectory for an unknown prompt, a response without steps, or
 * a label count that differs from the response's step count.
 */
export function prmExamples(trajectories: readonly PrmTrajectory[], items: ReadonlyMap<string, EvalItem>, tokenizer: TextTokenizer, config: ModelConfig): PrmTrainingExample[] {
  const pixels = new Map<string, Float32Array>();
  return trajectories.map((t, i) => {
    const item = items.get(t.promptId);
    if (item === undefined) throw new InvalidArgumentError(`trajectory ${i + 1}: prompt_id ${JSON.stringify(t.promptId)} is not in the run's pool`, { field: 'prompt_id' });
    const response = prmResponseIds(tokenizer, t.response);
    const steps = stepBoundaries(response, tokenizer.stepSeparatorId).length;
    if (steps === 0) throw new InvalidArgumentError(`trajectory ${i + 1} (${t.promptId}): the response has no steps to label`, { field: 'response' });
    if (steps !== t.stepLabels.length) {
      throw new InvalidArgumentError(`trajectory ${i + 1} (${t.promptId}): ${t.stepLabels.length} step labels for a response with ${steps} steps`, { field: 'step_labels' });
    }
    let image = pixels.get(item.id);
    if (image === undefined) {
      image = preprocessImage(item.image, config);
      pixels.set(item.id, image);
    }
    return { prompt: promptIds(tokenizer, item.question), response, labels: t.stepLabels, pixels: image };
  });
}

/** The feeds of the PRM training graph for a batch (right-padded): soft labels and weight 1 at each step boundary. */
export function prmFeeds(examples: readonly PrmTrainingExample[], config: ModelConfig, separatorId: number): Feeds {
  const batch = buildPrmBatch(examples, config, separatorId, 'right');
  const dims = [batch.batch, batch.seq];
  return {
    pixel_values: pixelFeed(examples, config),
    input_ids: { type: 'int64', dims, data: batch.inputIds },
    attention_mask: { type: 'int64', dims, data: batch.attentionMask },
    targets: { type: 'float32', dims, data: batch.targets },
    loss_weights: { type: 'float32', dims, data: batch.lossWeights },
  };
}

export interface PrmTrainOptions {
  readonly config: ModelConfig;
  readonly examples: readonly PrmTrainingExample[];
  /** The tokenizer's step separator id (`stepSeparatorId`), where the labels are read. */
  readonly separatorId: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly optimizer: FreshOptimizer;
  /** Seeds the data order. */
  readonly seed: number;
  /** PRM weights to start from (`@mstar/models` prmWeightsFromPolicy: the policy's backbone and a fresh score head). */
  readonly initialWeights: ModelWeights;
  /** Default in-thread with 2 intra-op threads. */
  readonly runtime?: TrainerRuntime;
  /** Checked before every step: an abort ends the run with `CancelledError` after the step in flight. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: SftProgress) => void;
}

const sequenceLength = (e: PrmTrainingExample): number => e.prompt.length + e.response.length;

/**
 * PRM training (method stage 2): binary cross-entropy between the score head's sigmoid at each
 * step boundary and the step's soft Monte-Carlo label (`@mstar/models` buildPrmTrainingGraph),
 * AdamW from a fresh optimizer. The result's `lastEpochLoss` is the mean BCE per labelled step.
 */
export async function trainPrm(options: PrmTrainOptions): Promise<SftResult> {
  const { config, examples, epochs, batchSize, separatorId } = options;
  checkRunSizes(examples.length, epochs, batchSize, 'PRM training');
  checkFits(examples, config, 'PRM example');
  const start = runStart(config, 'prm', { initialWeights: options.initialWeights, seed: options.seed });
  const trainer = await openTrainer(buildPrmTrainingGraph(config), start, options.optimizer, options.runtime);
  return trainEpochs(trainer, 'prm', config, {
    examples,
    lengths: examples.map(sequenceLength),
    epochs,
    batchSize,
    seed: options.seed,
    feeds: (batch) => prmFeeds(batch, config, separatorId),
    what: 'PRM training',
    signal: options.signal,
    onProgress: options.onProgress,
  });
}

/** A PRM opened in this thread: the scores at every step boundary, one list per example, in step order. */
export interface PrmStepScorer {
  scoreSteps(examples: readonly Pick<PrmTrainingExample, 'prompt' | 'response' | 'pixels'>[]): Promise<number[][]>;
  close(): Promise<void>;
}

/**
 * Opens `prm_scores.onnx` of PRM weights in this thread. Batches are right-padded exactly as PRM
 * training pads (`buildPrmBatch`), so scores are read where training reads labels.
 */
export async function openPrmScorer(options: { readonly config: ModelConfig; readonly weights: ModelWeights; readonly separatorId: number; readonly batchSize?: number; readonly device?: Device }): Promise<PrmStepScorer> {
  const { config, separatorId } = options;
  const size = options.batchSize ?? 16;
  const graph = exportOnnx(config, 'prm', options.weights).get(ONNX_FILES.prmScores)!;
  const session = await createSession(graph, { device: options.device ?? 'cpu', intraOpThreads: 2 });
  return {
    async scoreSteps(examples) {
      const out: number[][] = [];
      for (let first = 0; first < examples.length; first += size) {
        const rows = examples.slice(first, first + size);
        const batch = buildPrmBatch(
          rows.map((r) => ({ ...r, labels: new Array<number>(stepBoundaries(r.response, separatorId).length).fill(0) })),
          config,
          separatorId,
          'right',
        );
        const dims = [batch.batch, batch.seq];
        const result = await session.run(
          {
            [GRAPH_IO.pixelValues]: pixelFeed(rows, config),
            [GRAPH_IO.inputIds]: { type: 'int64', dims, data: batch.inputIds },
            [GRAPH_IO.attentionMask]: { type: 'int64', dims, data: batch.attentionMask },
          },
          [GRAPH_IO.scores],
        );
        const scores = result[GRAPH_IO.scores]!.data as Float32Array;
        batch.boundaries.forEach((columns, r) => out.push(columns.map((column) => scores[r * batch.seq + column]!)));
      }
      return out;
    },
    close: () => session.release(),
  };
}

/**
 * Mean binary cross-entropy per labelled step of PRM weights on examples, measured through the
 * inference graph (`prm_scores.onnx`: sigmoid scores read at the step boundaries), independently
 * of the training graph. Probabilities are clamped to [1e-7, 1 - 1e-7].
 */
export async function prmLoss(options: {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly examples: readonly PrmTrainingExample[];
  readonly separatorId: number;
  readonly batchSize?: number;
  readonly device?: Device;
}): Promise<number> {
  const { examples } = options;
  checkRunSizes(examples.length, 1, options.batchSize ?? 16, 'PRM loss');
  const scorer = await openPrmScorer(options);
  let sum = 0;
  let count = 0;
  try {
    const scores = await scorer.scoreSteps(examples);
    scores.forEach((row, r) => {
      row.forEach((score, k) => {
        const p = Math.min(1 - 1e-7, Math.max(1e-7, score));
        const y = examples[r]!.labels[k]!;
        sum -= y * Math.log(p) + (1 - y) * Math.log(1 - p);
        count++;
      });
    });
  } finally {
    await scorer.close();
  }
  return sum / count;
}
