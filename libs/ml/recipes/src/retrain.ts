import type { ModelConfig, ModelWeights } from '@mstar/models';
import type { TrainerRuntime } from '@mstar/training';
import { RecipeConfigError } from './errors.js';
import { sft } from './warmup.js';
import type { SftExample } from './warmup.js';

/** One data order to train with: a label and the seed of its batch shuffles. */
export interface RetrainOrder {
  readonly order: string;
  readonly seed: number;
}

export interface RetrainOptions {
  readonly config: ModelConfig;
  /** Where every run starts (a run's v(i-1)). */
  readonly weights: ModelWeights;
  /**
   * The optimizer saved with `weights` (a trainer checkpoint), continued as the trainer's CONTINUOUS
   * iterations continue it (from iteration 2, and in iteration 1 with `optimizer.continue_warmup`).
   */
  readonly optimizerState?: Uint8Array;
  /** Train with a fresh AdamW at this constant learning rate instead of continuing `optimizerState`. */
  readonly freshLr?: number;
  readonly examples: readonly SftExample[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly orders: readonly RetrainOrder[];
  /** The accuracy to compare (e.g. greedy accuracy in % on a split) of a policy's weights. */
  readonly measure: (weights: ModelWeights) => Promise<number>;
  readonly runtime?: TrainerRuntime;
  /** Called after each order's run is measured. */
  readonly onOrder?: (result: RetrainRun) => void;
}

/** One order's run: its training, how far it moved the policy, and the policy's measure after it. */
export interface RetrainRun extends RetrainOrder {
  readonly steps: number;
  readonly firstLoss: number;
  readonly lastEpochLoss: number;
  readonly lastLr: number;
  /** ||after - before|| / ||before|| over every parameter. */
  readonly relativeWeightChange: number;
  readonly accuracy: number;
  /** `accuracy` minus the start's. */
  readonly change: number;
}

export interface RetrainSpread {
  /** The start's accuracy. */
  readonly start: number;
  readonly runs: readonly RetrainRun[];
  /** Mean and sample standard deviation (0 for one order) of the runs' `change`. */
  readonly changeMean: number;
  readonly changeStd: number;
}

/** ||after - before|| / ||before|| over every parameter of `before`: how far a run moved a policy. */
export function relativeWeightChange(before: ModelWeights, after: ModelWeights): number {
  let diff = 0;
  let norm = 0;
  for (const [name, w] of before) {
    const v = after.get(name);
    if (v === undefined || v.length !== w.length) throw new RecipeConfigError(`parameter ${name} is missing or has another size after training`);
    for (let j = 0; j < w.length; j++) {
      diff += (v[j]! - w[j]!) ** 2;
      norm += w[j]! ** 2;
    }
  }
  return Math.sqrt(diff / norm);
}

/**
 * How much one self-evolving iteration's change in accuracy depends on the order of its batches:
 * trains the same start on the same examples once per order (as the trainer trains an iteration)
 * and measures each result next to the start.
 */
export async function retrainSpread(options: RetrainOptions): Promise<RetrainSpread> {
  if (options.freshLr === undefined && options.optimizerState === undefined) {
    throw new RecipeConfigError('retrainSpread needs the optimizer state saved with the weights, or freshLr for a fresh AdamW');
  }
  if (options.freshLr !== undefined && !(Number.isFinite(options.freshLr) && options.freshLr >= 0)) {
    throw new RecipeConfigError(`freshLr must be a finite learning rate >= 0, got ${options.freshLr}`);
  }
  if (options.orders.length === 0) throw new RecipeConfigError('retrainSpread needs at least one data order');
  for (const { order, seed } of options.orders) {
    if (!Number.isSafeInteger(seed)) throw new RecipeConfigError(`order ${order}: the seed must be an integer, got ${seed}`);
  }
  const start = await options.measure(options.weights);
  const runs: RetrainRun[] = [];
  for (const { order, seed } of options.orders) {
    const trained = await sft({
      config: options.config,
      examples: options.examples,
      epochs: options.epochs,
      batchSize: options.batchSize,
      optimizer: { schedule: { kind: 'constant', lr: options.freshLr ?? 0 } },
      seed,
      ...(options.freshLr === undefined ? { resume: options.optimizerState! } : { initialWeights: options.weights }),
      ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
    });
    const accuracy = await options.measure(trained.weights);
    const run: RetrainRun = {
      order,
      seed,
      steps: trained.steps,
      firstLoss: trained.firstLoss,
      lastEpochLoss: trained.lastEpochLoss,
      lastLr: trained.lastLr,
      relativeWeightChange: relativeWeightChange(options.weights, trained.weights),
      accuracy,
      change: accuracy - start,
    };
    options.onOrder?.(run);
    runs.push(run);
  }
  const changes = runs.map((r) => r.change);
  const changeMean = changes.reduce((a, b) => a + b, 0) / changes.length;
  const changeStd = changes.length < 2 ? 0 : Math.sqrt(changes.reduce((a, b) => a + (b - changeMean) ** 2, 0) / (changes.length - 1));
  return { start, runs, changeMean, changeStd };
}
