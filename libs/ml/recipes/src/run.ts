import { commonV1, curationV1, runV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { numImageTokens, paramCount, REFERENCE_CONFIG, TINY_CONFIG, type ModelConfig } from '@mstar/models';
import { generateSplit, type SplitName } from '@mstar/world';
import { itemFromProblem, type EvalItem } from './items.js';

/** The model configuration of a run spec's preset. */
export function modelConfigOf(preset: commonV1.ModelPreset): ModelConfig {
  if (preset === commonV1.ModelPreset.REFERENCE) return REFERENCE_CONFIG;
  if (preset === commonV1.ModelPreset.TINY) return TINY_CONFIG;
  throw new InvalidArgumentError(`model.preset must be REFERENCE or TINY, got ${preset}`, { field: 'model.preset' });
}

const samePreset = (config: ModelConfig, preset: ModelConfig): boolean => JSON.stringify(config) === JSON.stringify(preset);

/** A served model's shape as the contract describes it: the policy, or the PRM (backbone plus scoring head). */
export function modelSummary(config: ModelConfig, kind: 'policy' | 'prm'): commonV1.ModelSummary {
  const preset = samePreset(config, TINY_CONFIG)
    ? commonV1.ModelPreset.TINY
    : samePreset(config, REFERENCE_CONFIG)
      ? commonV1.ModelPreset.REFERENCE
      : commonV1.ModelPreset.UNSPECIFIED;
  return {
    preset,
    parameterCount: paramCount(config, kind),
    contextLength: config.text.maxPositionEmbeddings,
    vocabSize: config.text.vocabSize,
    hiddenSize: config.text.hiddenSize,
    numLayers: config.text.layers,
    numAttentionHeads: config.text.heads,
    imageSize: config.vision.imageSize,
    imageTokens: numImageTokens(config),
  };
}

/** The splits of a run: its labelled pool, the validation set and the test sets. */
export type RunSplit = 'pool' | 'validation' | 'test' | 'test-ood-compose' | 'test-ood-style';

const SPLIT_OF: Record<RunSplit, SplitName> = {
  pool: 'train',
  validation: 'validation',
  test: 'test',
  'test-ood-compose': 'test-ood-compose',
  'test-ood-style': 'test-ood-style',
};

function sizeOf(world: runV1.WorldSettings, split: RunSplit): number {
  switch (split) {
    case 'pool':
      return world.poolSize;
    case 'validation':
      return world.validationSize;
    case 'test':
      return world.inDomainTestSize;
    default:
      return world.outOfDomainTestSize;
  }
}

/**
 * The items of one split of a run's world (a pure function of the world settings): the pool is
 * the first pool_size train problems, each test split the first *_test_size of its split, the gold
 * chains in the world's chain style, the answers in its answer style. Every service building the
 * same run sees the same items with the same ids.
 */
export function runItems(world: runV1.WorldSettings, split: RunSplit): EvalItem[] {
  const cot = world.chainStyle === runV1.ChainStyle.TALLY ? 'tally' : 'plain';
  const answers = world.answerStyle === runV1.AnswerStyle.WORKED ? 'worked' : 'short';
  return generateSplit(SPLIT_OF[split], { seed: world.worldSeed, size: sizeOf(world, split), answers }).map((p) => itemFromProblem(p, { cot }));
}

/** One line of the PRM training data: a sampled response and the Monte-Carlo label of each step. */
export interface PrmTrajectory {
  readonly promptId: string;
  readonly response: string;
  /** One label in [0, 1] per step (the blocks before `# Answer`), in order. */
  readonly stepLabels: readonly number[];
  /** Whether the response's own final answer matches the gold answer. */
  readonly correct: boolean;
}

function jsonLines<T>(bytes: Uint8Array, source: string, parse: (value: unknown, where: string) => T): T[] {
  const out: T[] = [];
  new TextDecoder()
    .decode(bytes)
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${source}:${i + 1}`;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (cause) {
        throw new InvalidArgumentError(`${where}: not JSON (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
      }
      out.push(parse(value, where));
    });
  return out;
}

const toBytes = (lines: readonly unknown[]): Uint8Array => new TextEncoder().encode(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));

/** JSONL of PRM trajectories (`prompt_id`, `response`, `step_labels`, `correct`). */
export function encodePrmData(trajectories: readonly PrmTrajectory[]): Uint8Array {
  return toBytes(trajectories.map((t) => ({ prompt_id: t.promptId, response: t.response, step_labels: t.stepLabels, correct: t.correct })));
}

export function decodePrmData(bytes: Uint8Array, source = 'prm data'): PrmTrajectory[] {
  return jsonLines(bytes, source, (v, where) => {
    const o = v as Record<string, unknown>;
    const labels = o['step_labels'];
    if (typeof o['prompt_id'] !== 'string' || typeof o['response'] !== 'string' || typeof o['correct'] !== 'boolean') {
      throw new InvalidArgumentError(`${where}: needs string prompt_id and response and boolean correct`);
    }
    if (!Array.isArray(labels) || labels.length === 0 || !labels.every((x) => typeof x === 'number' && x >= 0 && x <= 1)) {
      throw new InvalidArgumentError(`${where}: step_labels must be a non-empty list of numbers in [0, 1]`);
    }
    return { promptId: o['prompt_id'], response: o['response'], stepLabels: labels as number[], correct: o['correct'] };
  });
}

/** JSONL of an iteration's dataset: one `mstar.curation.v1.DatasetRecord` (proto JSON) per line. */
export function encodeDatasetRecords(records: readonly curationV1.DatasetRecord[]): Uint8Array {
  return toBytes(records.map((r) => curationV1.DatasetRecord.toJSON(r)));
}

export function decodeDatasetRecords(bytes: Uint8Array, source = 'dataset'): curationV1.DatasetRecord[] {
  return jsonLines(bytes, source, (v, where) => {
    const record = curationV1.DatasetRecord.fromJSON(v);
    if (record.promptId === '' || record.response === '') throw new InvalidArgumentError(`${where}: a record needs promptId and response`);
    return record;
  });
}
