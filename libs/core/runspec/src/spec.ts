import { runV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';

/** A RunSpec whose sub-messages are all present: what `parseRunSpec` returns and `validateRunSpec` guarantees. */
export type ResolvedRunSpec = runV1.RunSpec & {
  model: runV1.ModelSettings;
  world: runV1.WorldSettings;
  warmup: runV1.WarmupSettings;
  prm: runV1.PrmSettings;
  selection: runV1.SelectionSettings;
  temperature: runV1.TemperaturePolicy & { grid: runV1.TemperatureGrid };
  optimizer: runV1.OptimizerSettings;
  evaluation: runV1.EvaluationSettings;
};

/** Largest pool the world's train split holds (its default size). */
export const MAX_POOL_SIZE = 20_000;
/** The highest sampling temperature policy-inference accepts (its MAX_TEMPERATURE): above it samples are noise. */
export const MAX_SPEC_TEMPERATURE = 2;
const MAX_SAMPLES = 64;
const MAX_NEW_TOKENS = 256;

function fail(field: string, message: string): never {
  throw new InvalidArgumentError(`${field}: ${message}`, { field });
}

function present<T>(value: T | undefined, field: string): T {
  if (value === undefined) fail(field, 'is required');
  return value;
}

function intIn(value: number, field: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer in [${min}, ${max}], got ${value}`);
}

function positive(value: number, field: string): void {
  if (!Number.isFinite(value) || value <= 0) fail(field, `must be a finite number > 0, got ${value}`);
}

function inRange(value: number, field: string, min: number, max: number, minOpen = false): void {
  const low = minOpen ? value > min : value >= min;
  if (!Number.isFinite(value) || !low || value > max) fail(field, `must be in ${minOpen ? '(' : '['}${min}, ${max}], got ${value}`);
}

function enumSet(value: number, field: string, names: Record<number, string>): void {
  if (value === 0 || names[value] === undefined) fail(field, 'must be set to one of its values (UNSPECIFIED is not a setting)');
}

/** The temperatures a sweep tries, ascending: the list, or the range's points rounded to 6 decimals. */
export function temperatureGrid(spec: ResolvedRunSpec): number[] {
  const grid = spec.temperature.grid.grid;
  if (grid === undefined) return [];
  if (grid.$case === 'list') return [...grid.value.values].sort((a, b) => a - b);
  const { min, max, step } = grid.value;
  const points: number[] = [];
  for (let i = 0; ; i++) {
    const t = Math.round((min + i * step) * 1e6) / 1e6;
    if (t > max + 1e-9) break;
    points.push(t);
  }
  return points;
}

/**
 * Checks every setting of a spec (a zero means zero: nothing is filled in here) and returns it
 * typed as resolved. Throws InvalidArgumentError whose `field` is the dotted proto path.
 */
export function validateRunSpec(spec: runV1.RunSpec): ResolvedRunSpec {
  if (spec.name.trim().length === 0) fail('name', 'must not be empty');
  const model = present(spec.model, 'model');
  enumSet(model.preset, 'model.preset', { 1: 'REFERENCE', 2: 'TINY' });
  const world = present(spec.world, 'world');
  intIn(world.poolSize, 'world.pool_size', 1, MAX_POOL_SIZE);
  intIn(world.validationSize, 'world.validation_size', 1, 1000);
  intIn(world.inDomainTestSize, 'world.in_domain_test_size', 0, 1000);
  intIn(world.outOfDomainTestSize, 'world.out_of_domain_test_size', 0, 1000);
  if (world.chainStyle !== runV1.ChainStyle.UNSPECIFIED) enumSet(world.chainStyle, 'world.chain_style', runV1.ChainStyle);
  if (world.answerStyle !== runV1.AnswerStyle.UNSPECIFIED) enumSet(world.answerStyle, 'world.answer_style', runV1.AnswerStyle);
  const warmup = present(spec.warmup, 'warmup');
  intIn(warmup.examples, 'warmup.examples', 1, world.poolSize);
  intIn(warmup.epochs, 'warmup.epochs', 1, 1000);
  positive(warmup.learningRate, 'warmup.learning_rate');
  intIn(warmup.batchSize, 'warmup.batch_size', 1, 4096);
  intIn(warmup.visionPretrainingSteps, 'warmup.vision_pretraining_steps', 0, 100_000);
  const prm = present(spec.prm, 'prm');
  intIn(prm.prompts, 'prm.prompts', 1, world.poolSize);
  intIn(prm.samplesPerPrompt, 'prm.samples_per_prompt', 1, MAX_SAMPLES);
  intIn(prm.rolloutsPerStep, 'prm.rollouts_per_step', 1, MAX_SAMPLES);
  intIn(prm.epochs, 'prm.epochs', 1, 1000);
  positive(prm.learningRate, 'prm.learning_rate');
  intIn(prm.batchSize, 'prm.batch_size', 1, 4096);
  intIn(spec.iterations, 'iterations', 1, 1000);
  enumSet(spec.trainingMethod, 'training_method', runV1.TrainingMethod);
  inRange(spec.intervalFraction, 'interval_fraction', 0, 1, true);
  intIn(spec.intervalStart, 'interval_start', 0, world.poolSize - 1);
  intIn(spec.samplesPerPrompt, 'samples_per_prompt', 1, MAX_SAMPLES);
  inRange(spec.topP, 'top_p', 0, 1, true);
  intIn(spec.maxNewTokens, 'max_new_tokens', 1, MAX_NEW_TOKENS);
  const selection = present(spec.selection, 'selection');
  enumSet(selection.rule, 'selection.rule', runV1.SelectionRule);
  if (selection.rule === runV1.SelectionRule.RANDOM_K || selection.rule === runV1.SelectionRule.PRM_TOP_K) {
    intIn(selection.k, 'selection.k', 1, MAX_SAMPLES);
  }
  if (selection.rule === runV1.SelectionRule.PRM_THRESHOLD) inRange(selection.alpha, 'selection.alpha', 0, 1);
  if (selection.chainCheck !== runV1.ChainCheck.UNSPECIFIED) enumSet(selection.chainCheck, 'selection.chain_check', runV1.ChainCheck);
  if (selection.rationalize && !warmup.hinted) fail('selection.rationalize', 'needs warmup.hinted: a policy never trained on hinted questions ignores the hint');
  enumSet(spec.aggregation, 'aggregation', { 1: 'MIN', 2: 'MEAN', 3: 'LAST', 4: 'PRODUCT' });
  const temperature = present(spec.temperature, 'temperature');
  enumSet(temperature.mode, 'temperature.mode', runV1.TemperatureMode);
  inRange(temperature.staticTemperature, 'temperature.static_temperature', 0, MAX_SPEC_TEMPERATURE, true);
  intIn(temperature.retuneEvery, 'temperature.retune_every', 1, 1000);
  intIn(temperature.evalSamplesPerPrompt, 'temperature.eval_samples_per_prompt', 1, MAX_SAMPLES);
  intIn(temperature.rewardPassK, 'temperature.reward_pass_k', 1, temperature.evalSamplesPerPrompt);
  const grid = present(temperature.grid?.grid, 'temperature.grid');
  if (grid.$case === 'range') {
    const { min, max, step } = grid.value;
    inRange(min, 'temperature.grid.range.min', 0, MAX_SPEC_TEMPERATURE, true);
    inRange(max, 'temperature.grid.range.max', min, MAX_SPEC_TEMPERATURE);
    positive(step, 'temperature.grid.range.step');
    if ((max - min) / step > 200) fail('temperature.grid.range.step', `gives more than 200 points between ${min} and ${max}`);
  } else {
    const { values } = grid.value;
    if (values.length === 0) fail('temperature.grid.list.values', 'needs at least one temperature');
    values.forEach((t, i) => inRange(t, `temperature.grid.list.values[${i}]`, 0, MAX_SPEC_TEMPERATURE, true));
    if (new Set(values).size !== values.length) fail('temperature.grid.list.values', 'has duplicates');
  }
  const optimizer = present(spec.optimizer, 'optimizer');
  positive(optimizer.learningRate, 'optimizer.learning_rate');
  enumSet(optimizer.schedule, 'optimizer.schedule', runV1.LrSchedule);
  if (optimizer.schedule === runV1.LrSchedule.COSINE && optimizer.decaySteps <= optimizer.warmupSteps) {
    fail('optimizer.decay_steps', `must be > warmup_steps (${optimizer.warmupSteps}) under COSINE, got ${optimizer.decaySteps}`);
  }
  inRange(optimizer.minLearningRate, 'optimizer.min_learning_rate', 0, optimizer.learningRate);
  inRange(optimizer.weightDecay, 'optimizer.weight_decay', 0, 1);
  inRange(optimizer.gradClip, 'optimizer.grad_clip', 0, 1e6);
  intIn(optimizer.batchSize, 'optimizer.batch_size', 1, 4096);
  intIn(optimizer.epochsPerIteration, 'optimizer.epochs_per_iteration', 1, 1000);
  if (optimizer.continueWarmup && spec.trainingMethod !== runV1.TrainingMethod.CONTINUOUS) {
    fail('optimizer.continue_warmup', `applies to CONTINUOUS training only (the restart methods create a fresh optimizer every iteration), got training_method ${runV1.trainingMethodToJSON(spec.trainingMethod).replace('TRAINING_METHOD_', '')}`);
  }
  const evaluation = present(spec.evaluation, 'evaluation');
  evaluation.splits.forEach((s, i) => enumSet(s, `evaluation.splits[${i}]`, runV1.TestSplit));
  if (new Set(evaluation.splits).size !== evaluation.splits.length) fail('evaluation.splits', 'has duplicates');
  return spec as ResolvedRunSpec;
}

/** The pool prompts of iteration i (1-based): `interval` indices from (interval_start + (i - 1) * interval) mod pool, cycling. */
export function poolSlice(spec: ResolvedRunSpec, iteration: number): { start: number; indices: number[] } {
  intIn(iteration, 'iteration', 1);
  const pool = spec.world.poolSize;
  const interval = intervalSize(spec);
  const start = (spec.intervalStart + (iteration - 1) * interval) % pool;
  return { start, indices: Array.from({ length: interval }, (_, j) => (start + j) % pool) };
}

/** Prompts per iteration: round(interval_fraction x pool_size), at least 1. */
export function intervalSize(spec: ResolvedRunSpec): number {
  return Math.max(1, Math.round(spec.intervalFraction * spec.world.poolSize));
}

/** True when the balancer sweeps the grid before iteration i (never under STATIC). */
export function sweepsBefore(spec: ResolvedRunSpec, iteration: number): boolean {
  if (spec.temperature.mode === runV1.TemperatureMode.STATIC) return false;
  return (iteration - 1) % spec.temperature.retuneEvery === 0;
}
