import { runV1 } from '@mstar/contracts';
import { withAnswerHint } from '@mstar/cot';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { deriveSeed } from '@mstar/metrics';
import { initWeights, loadCheckpoint, prmWeightsFromPolicy, storeCheckpointIO, type Checkpoint } from '@mstar/models';
import type { LrSchedule } from '@mstar/optim';
import {
  decodeDatasetRecords,
  decodePrmData,
  modelConfigOf,
  pretrainVision,
  prmExamples,
  runItems,
  sft,
  sftExamples,
  trainPrm,
  warmup,
  type EvalItem,
  type FreshOptimizer,
  type SftProgress,
  type SftResult,
} from '@mstar/recipes';
import type { ResolvedRunSpec } from '@mstar/runspec';
import type { ArtifactStore } from '@mstar/stores';
import type { TrainerRuntime } from '@mstar/training';
import { buildWorldTokenizer, createTokenizer } from '@mstar/world';
import { checkpointPrefix, isComplete, type CheckpointMeta, type CheckpointTarget, type TrainerStage } from './checkpoints.js';

/** A run's prompt pool, in pool order and by prompt id. */
export interface PoolItems {
  readonly items: readonly EvalItem[];
  readonly byId: ReadonlyMap<string, EvalItem>;
}

/**
 * The pool of a run's world, generated once and kept for the world last asked for: every stage of
 * a run needs the same pool, and generating it (rendering every scene) takes seconds.
 */
export function poolCache(): (world: runV1.WorldSettings) => PoolItems {
  let cached: { key: string; pool: PoolItems } | undefined;
  return (world) => {
    const key = JSON.stringify(runV1.WorldSettings.toJSON(world));
    if (cached?.key !== key) {
      const items = runItems(world, 'pool');
      cached = { key, pool: { items, byId: new Map(items.map((item) => [item.id, item])) } };
    }
    return cached.pool;
  };
}

export interface StageDeps {
  readonly artifacts: ArtifactStore;
  readonly runtime: TrainerRuntime;
  readonly pool: (world: runV1.WorldSettings) => PoolItems;
}

/** One stage's work order. */
export interface StageRun {
  readonly runId: string;
  readonly spec: ResolvedRunSpec;
  /** Aborts between optimizer steps (run cancelled, or the service stopping). */
  readonly signal: AbortSignal;
  readonly onProgress: (event: SftProgress) => void;
}

/** A trained model and the description of its checkpoint, ready to be written. */
export interface StageOutput {
  readonly checkpoint: Checkpoint;
  readonly meta: Omit<CheckpointMeta, 'createdAt'>;
}

/** The settings the PRM gets (the spec gives it a constant learning rate). */
function constantOptimizer(lr: number): FreshOptimizer {
  return { schedule: { kind: 'constant', lr } };
}

/** The learning-rate schedule of `spec.optimizer` in @mstar/optim terms. */
export function scheduleOf(settings: runV1.OptimizerSettings): LrSchedule {
  const lr = settings.learningRate;
  switch (settings.schedule) {
    case runV1.LrSchedule.CONSTANT:
      return { kind: 'constant', lr };
    case runV1.LrSchedule.LINEAR_WARMUP:
      return { kind: 'linear-warmup', lr, warmupSteps: settings.warmupSteps };
    case runV1.LrSchedule.COSINE:
      return { kind: 'warmup-cosine', lr, warmupSteps: settings.warmupSteps, totalSteps: settings.decaySteps, minLr: settings.minLearningRate };
    default:
      throw new InvalidArgumentError(`optimizer.schedule must be CONSTANT, LINEAR_WARMUP or COSINE, got ${runV1.lrScheduleToJSON(settings.schedule)}`, { field: 'optimizer.schedule' });
  }
}

/** The fresh optimizer of a self-evolving iteration (`spec.optimizer`). */
export function iterationOptimizer(settings: runV1.OptimizerSettings): FreshOptimizer {
  return { schedule: scheduleOf(settings), weightDecay: settings.weightDecay, clipNorm: settings.gradClip };
}

function stageMeta(stage: TrainerStage, target: CheckpointTarget, result: SftResult, extra: { iteration: number; trainingExamples: number; parent: CheckpointTarget | undefined }) {
  return {
    ...target,
    ...extra,
    stage,
    optimizerStep: result.optimizerStep,
    steps: result.steps,
    examplesSeen: result.examplesSeen,
    loss: result.lastLoss,
    learningRate: result.lastLr,
    seconds: result.seconds,
  };
}

/** Loads a complete checkpoint of the run; FailedPreconditionError (retried) while it is not complete. */
async function loadComplete(deps: StageDeps, runId: string, target: CheckpointTarget): Promise<Checkpoint> {
  if (!(await isComplete(deps.artifacts, runId, target))) {
    throw new FailedPreconditionError(`${target.kind} v${target.version} of run ${runId} is not complete; training cannot start from it`);
  }
  return loadCheckpoint(storeCheckpointIO(deps.artifacts, checkpointPrefix(runId, target)), { kind: target.kind });
}

/**
 * The warm-up's examples: the first `warmup.examples` pool items, then under `warmup.hinted` the
 * same items again with their questions hinted by their gold answers (withAnswerHint).
 */
export function warmupItems(pool: readonly EvalItem[], warmup: Pick<runV1.WarmupSettings, 'examples' | 'hinted'>): EvalItem[] {
  const gold = pool.slice(0, warmup.examples);
  return warmup.hinted ? [...gold, ...gold.map((item) => ({ ...item, question: withAnswerHint(item.question, item.answer) }))] : gold;
}

/** The settings policy v0 depends on, the only ones trainWarmup reads: runs that agree on them train the same v0. */
export function warmupSettings(spec: ResolvedRunSpec): Pick<ResolvedRunSpec, 'seed' | 'model' | 'world' | 'warmup'> {
  return { seed: spec.seed, model: spec.model, world: spec.world, warmup: spec.warmup };
}

/**
 * Stage 1: fresh weights, their vision tower pretrained for `warmup.vision_pretraining_steps` (when
 * > 0), then SFT on the gold CoT of the first `warmup.examples` pool items (and of their hinted
 * copies under `warmup.hinted`) -> policy v0.
 */
export async function trainWarmup(deps: StageDeps, run: StageRun): Promise<StageOutput> {
  const spec = warmupSettings(run.spec);
  const config = modelConfigOf(spec.model.preset);
  const tokenizerFiles = buildWorldTokenizer();
  const tokenizer = createTokenizer(tokenizerFiles);
  const items = warmupItems(deps.pool(spec.world).items, spec.warmup);
  const fresh = initWeights(config, 'policy', deriveSeed(spec.seed, 'init', 'policy'));
  const vision =
    spec.warmup.visionPretrainingSteps > 0
      ? await pretrainVision({
          config,
          steps: spec.warmup.visionPretrainingSteps,
          seed: deriveSeed(spec.seed, 'train', 'vision'),
          initialWeights: fresh,
          runtime: deps.runtime,
          signal: run.signal,
        })
      : undefined;
  // The warm-up recipe's schedule (linear ramp, cosine decay): the one the benchmark was calibrated with.
  const result = await warmup({
    config,
    examples: sftExamples(items, tokenizer, config),
    epochs: spec.warmup.epochs,
    batchSize: spec.warmup.batchSize,
    lr: spec.warmup.learningRate,
    seed: deriveSeed(spec.seed, 'train', 0),
    initialWeights: vision?.weights ?? fresh,
    runtime: deps.runtime,
    signal: run.signal,
    onProgress: run.onProgress,
  });
  return {
    checkpoint: { kind: 'policy', config, weights: result.weights, tokenizer: tokenizerFiles, optimizerState: result.optimizerState },
    meta: stageMeta('warmup', { kind: 'policy', version: 0 }, result, { iteration: 0, trainingExamples: items.length, parent: undefined }),
  };
}

/** Stage 2: the PRM, its backbone initialised from policy v0, on the Monte-Carlo step labels at `artifactKey` -> prm v0. */
export async function trainPrmStage(deps: StageDeps, run: StageRun, artifactKey: string): Promise<StageOutput> {
  const { spec, runId } = run;
  const policy = await loadComplete(deps, runId, { kind: 'policy', version: 0 });
  const tokenizer = createTokenizer(policy.tokenizer);
  const trajectories = decodePrmData(await deps.artifacts.get(artifactKey), artifactKey);
  const examples = prmExamples(trajectories, deps.pool(spec.world).byId, tokenizer, policy.config);
  const result = await trainPrm({
    config: policy.config,
    examples,
    separatorId: tokenizer.stepSeparatorId,
    epochs: spec.prm.epochs,
    batchSize: spec.prm.batchSize,
    optimizer: constantOptimizer(spec.prm.learningRate),
    seed: deriveSeed(spec.seed, 'train', 'prm'),
    initialWeights: prmWeightsFromPolicy(policy.config, policy.weights, deriveSeed(spec.seed, 'init', 'prm')),
    runtime: deps.runtime,
    signal: run.signal,
    onProgress: run.onProgress,
  });
  return {
    checkpoint: { kind: 'prm', config: policy.config, weights: result.weights, tokenizer: policy.tokenizer, optimizerState: result.optimizerState },
    meta: stageMeta('prm', { kind: 'prm', version: 0 }, result, { iteration: 0, trainingExamples: trajectories.length, parent: undefined }),
  };
}

/** Where iteration i starts under a training method: whose weights, and whether their optimizer continues. */
export interface IterationStart {
  /** The policy version whose weights training starts from (the checkpoint's parent). */
  readonly from: number;
  /** True: continue the optimizer saved with `from`; false: a fresh optimizer from spec.optimizer. */
  readonly resume: boolean;
}

/**
 * CONTINUOUS continues v(i-1) with its optimizer (iteration 1 creates that optimizer from
 * spec.optimizer, or with `continueWarmup` continues the warm-up's); RESTART_FROM_LAST takes
 * v(i-1)'s weights with a fresh optimizer; RESTART_FROM_INITIAL takes v0's weights with a fresh
 * optimizer.
 */
export function iterationStart(method: runV1.TrainingMethod, iteration: number, continueWarmup = false): IterationStart {
  switch (method) {
    case runV1.TrainingMethod.CONTINUOUS:
      return { from: iteration - 1, resume: iteration > 1 || continueWarmup };
    case runV1.TrainingMethod.RESTART_FROM_LAST:
      return { from: iteration - 1, resume: false };
    case runV1.TrainingMethod.RESTART_FROM_INITIAL:
      return { from: 0, resume: false };
    default:
      throw new InvalidArgumentError(`training_method must be CONTINUOUS, RESTART_FROM_LAST or RESTART_FROM_INITIAL, got ${runV1.trainingMethodToJSON(method)}`, {
        field: 'training_method',
      });
  }
}

/** Stage 3, iteration i: SFT on the iteration's dataset (prompt ids looked up in the pool) from the method's start -> policy vi. */
export async function trainIteration(deps: StageDeps, run: StageRun, iteration: number, artifactKey: string): Promise<StageOutput> {
  const { spec, runId } = run;
  if (!Number.isInteger(iteration) || iteration < 1 || iteration > spec.iterations) {
    throw new InvalidArgumentError(`dataset_ready.dataset.iteration must be in [1, ${spec.iterations}] (the run's iterations), got ${iteration}`, { field: 'dataset.iteration' });
  }
  const start = iterationStart(spec.trainingMethod, iteration, spec.optimizer.continueWarmup);
  const parent = await loadComplete(deps, runId, { kind: 'policy', version: start.from });
  if (start.resume && parent.optimizerState === undefined) {
    throw new FailedPreconditionError(`policy v${start.from} of run ${runId} has no optimizer state to continue`);
  }
  const tokenizer = createTokenizer(parent.tokenizer);
  const records = decodeDatasetRecords(await deps.artifacts.get(artifactKey), artifactKey);
  const { byId } = deps.pool(spec.world);
  const items = records.map((record, i) => {
    const item = byId.get(record.promptId);
    if (item === undefined) throw new InvalidArgumentError(`${artifactKey}:${i + 1}: prompt_id ${JSON.stringify(record.promptId)} is not in the run's pool`, { field: 'prompt_id' });
    return { ...item, response: record.response };
  });
  const result = await sft({
    config: parent.config,
    examples: sftExamples(items, tokenizer, parent.config),
    epochs: spec.optimizer.epochsPerIteration,
    batchSize: spec.optimizer.batchSize,
    optimizer: iterationOptimizer(spec.optimizer),
    seed: deriveSeed(spec.seed, 'train', iteration),
    ...(start.resume ? { resume: parent.optimizerState } : { initialWeights: parent.weights }),
    runtime: deps.runtime,
    signal: run.signal,
    onProgress: run.onProgress,
  });
  return {
    checkpoint: { kind: 'policy', config: parent.config, weights: result.weights, tokenizer: parent.tokenizer, optimizerState: result.optimizerState },
    meta: stageMeta('iteration', { kind: 'policy', version: iteration }, result, { iteration, trainingExamples: records.length, parent: { kind: 'policy', version: start.from } }),
  };
}
