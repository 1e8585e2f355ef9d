import { commonV1, runV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { validateRunSpec, type ResolvedRunSpec } from './spec.js';

/**
 * The keys a run-spec file may hold (proto JSON names): `true` for a scalar or list, a string for
 * an enum (its value prefix, so a file may write `CONTINUOUS` for `TRAINING_METHOD_CONTINUOUS`),
 * an object for a message. A test checks it against the generated RunSpec.
 */
export const RUN_SPEC_KEYS = {
  name: true,
  seed: true,
  model: { preset: 'MODEL_PRESET_' },
  world: { poolSize: true, validationSize: true, inDomainTestSize: true, outOfDomainTestSize: true, worldSeed: true, chainStyle: 'CHAIN_STYLE_', answerStyle: 'ANSWER_STYLE_' },
  warmup: { examples: true, epochs: true, learningRate: true, batchSize: true, visionPretrainingSteps: true, hinted: true },
  prm: { prompts: true, samplesPerPrompt: true, rolloutsPerStep: true, epochs: true, learningRate: true, batchSize: true },
  iterations: true,
  trainingMethod: 'TRAINING_METHOD_',
  intervalFraction: true,
  intervalStart: true,
  samplesPerPrompt: true,
  topP: true,
  maxNewTokens: true,
  selection: { rule: 'SELECTION_RULE_', k: true, alpha: true, chainCheck: 'CHAIN_CHECK_', distinct: true, balanceAnswers: true, unsolvedOnly: true, greedyFirst: true, rationalize: true },
  aggregation: 'AGGREGATION_',
  temperature: {
    mode: 'TEMPERATURE_MODE_',
    staticTemperature: true,
    grid: { range: { min: true, max: true, step: true }, list: { values: true } },
    retuneEvery: true,
    rewardPassK: true,
    evalSamplesPerPrompt: true,
  },
  optimizer: {
    learningRate: true,
    schedule: 'LR_SCHEDULE_',
    warmupSteps: true,
    decaySteps: true,
    minLearningRate: true,
    weightDecay: true,
    gradClip: true,
    batchSize: true,
    epochsPerIteration: true,
    continueWarmup: true,
  },
  evaluation: { splits: 'TEST_SPLIT_' },
} as const;

type KeySchema = true | string | { readonly [key: string]: KeySchema };

/** The generated enum behind each value prefix (TS enums map names to numbers). */
const ENUMS: Readonly<Record<string, object>> = {
  MODEL_PRESET_: commonV1.ModelPreset,
  TRAINING_METHOD_: runV1.TrainingMethod,
  SELECTION_RULE_: runV1.SelectionRule,
  CHAIN_CHECK_: runV1.ChainCheck,
  AGGREGATION_: commonV1.Aggregation,
  TEMPERATURE_MODE_: runV1.TemperatureMode,
  LR_SCHEDULE_: runV1.LrSchedule,
  TEST_SPLIT_: runV1.TestSplit,
  CHAIN_STYLE_: runV1.ChainStyle,
  ANSWER_STYLE_: runV1.AnswerStyle,
};

/**
 * What a file may leave out: the defaults the proto documents (the paper's settings). Sizes of
 * the world, the warm-up, the PRM data and the optimizer have no default and must be given.
 */
export const SPEC_FILE_DEFAULTS = {
  seed: 1,
  model: { preset: 'MODEL_PRESET_REFERENCE' },
  prm: { rolloutsPerStep: 8 },
  trainingMethod: 'TRAINING_METHOD_CONTINUOUS',
  intervalFraction: 0.25,
  samplesPerPrompt: 16,
  topP: 1,
  selection: { rule: 'SELECTION_RULE_PRM_TOP_K', k: 2 },
  aggregation: 'AGGREGATION_MIN',
  temperature: {
    mode: 'TEMPERATURE_MODE_BALANCER_REWARD_PASS_AT_K',
    staticTemperature: 1,
    grid: { range: { min: 0.3, max: 1.6, step: 0.1 } },
    retuneEvery: 2,
    rewardPassK: 2,
    evalSamplesPerPrompt: 16,
  },
  optimizer: { schedule: 'LR_SCHEDULE_CONSTANT', epochsPerIteration: 1 },
  evaluation: { splits: ['TEST_SPLIT_IN_DOMAIN', 'TEST_SPLIT_OUT_OF_DOMAIN'] },
} as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** snake_case -> camelCase keys, unknown keys rejected, enum short names given their prefix. */
function normalise(value: Json, schema: KeySchema, path: string): Json {
  if (typeof schema === 'string') {
    const names = Object.keys(ENUMS[schema]!).filter((k) => Number.isNaN(Number(k)) && k !== 'UNRECOGNIZED');
    const withPrefix = (v: Json, at: string): Json => {
      const short = typeof v === 'string' ? v.toUpperCase().replace(schema, '') : undefined;
      if (short === undefined || !names.includes(short)) {
        throw new InvalidArgumentError(`${at}: ${JSON.stringify(v)} is not one of ${names.join(', ')}`, { field: at });
      }
      return `${schema}${short}`;
    };
    return Array.isArray(value) ? value.map((v, i) => withPrefix(v, `${path}[${i}]`)) : withPrefix(value, path);
  }
  if (schema === true) return value;
  if (!isObject(value)) {
    throw new InvalidArgumentError(path === '' ? 'a run spec must be a mapping of settings' : `${path}: must be a mapping`, path === '' ? {} : { field: path });
  }
  const out: Record<string, Json> = {};
  for (const [rawKey, v] of Object.entries(value)) {
    const key = camel(rawKey);
    const child = schema[key];
    const childPath = path === '' ? rawKey : `${path}.${rawKey}`;
    if (child === undefined) throw new InvalidArgumentError(`${childPath}: unknown setting (known: ${Object.keys(schema).join(', ')})`, { field: childPath });
    out[key] = normalise(v, child, childPath);
  }
  return out;
}

/** Deep merge of mappings; lists, scalars and the grid oneof are replaced whole. */
function merge(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = key === 'grid' ? value : merge(base[key] ?? null, value);
  return out;
}

/**
 * Parses a run-spec YAML (or JSON) file: snake_case or camelCase keys, enum values with or without
 * their prefix, the documented defaults filled in, then validated. Errors name the setting.
 */
export function parseRunSpec(text: string, source = 'run spec'): ResolvedRunSpec {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new InvalidArgumentError(`${source}: not valid YAML: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const given = normalise((raw ?? {}) as Json, RUN_SPEC_KEYS, '');
  let spec: runV1.RunSpec;
  try {
    spec = runV1.RunSpec.fromJSON(merge(SPEC_FILE_DEFAULTS as unknown as Json, given));
  } catch (cause) {
    throw new InvalidArgumentError(`${source}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  return validateRunSpec(spec);
}

/** The YAML text of a spec (snake_case keys, full enum names), which `parseRunSpec` reads back. */
export function formatRunSpec(spec: runV1.RunSpec): string {
  const snake = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(snake);
    if (!isObject(value)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snake(v)]));
  };
  const lines = Object.entries(snake(runV1.RunSpec.toJSON(spec)) as Record<string, unknown>);
  return stringifyYaml(Object.fromEntries(lines));
}
