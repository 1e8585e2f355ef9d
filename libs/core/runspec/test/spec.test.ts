import { readFileSync } from 'node:fs';
import { commonV1, runV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  RUN_SPEC_KEYS,
  formatRunSpec,
  parseRunSpec,
  poolSlice,
  runArtifacts,
  runRecordKey,
  sweepsBefore,
  temperatureGrid,
  validateRunSpec,
  type ResolvedRunSpec,
} from '../src/index.js';

const defaultFile = readFileSync(new URL('../../../../specs/default.yaml', import.meta.url), 'utf8');
/** Every pool prompt a spec's iterations sample, iteration by iteration. */
const sampledPrompts = (spec: ResolvedRunSpec) => Array.from({ length: spec.iterations }, (_, i) => poolSlice(spec, i + 1).indices).flat();
/** specs/<name>.yaml, parsed. */
const readSpec = (name: string) => parseRunSpec(readFileSync(new URL(`../../../../specs/${name}.yaml`, import.meta.url), 'utf8'));

const MINIMAL = {
  name: 't',
  iterations: 3,
  max_new_tokens: 32,
  world: { pool_size: 100, validation_size: 10, in_domain_test_size: 10, out_of_domain_test_size: 10, world_seed: 2 },
  warmup: { examples: 50, epochs: 1, learning_rate: 0.001, batch_size: 8 },
  prm: { prompts: 10, samples_per_prompt: 2, epochs: 1, learning_rate: 0.001, batch_size: 4 },
  optimizer: { learning_rate: 0.0001, batch_size: 8 },
};

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);
function merged(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(base[k]) ? merged(base[k], v) : v;
  return out;
}
/** The minimal file with some settings changed, as YAML text. */
const minimal = (over: Tree = {}): string => stringify(merged(MINIMAL, over));

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as InvalidArgumentError).field;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('parseRunSpec', () => {
  it('reads the tallied spec whose iterations sample only prompts the warm-up never saw', () => {
    const spec = readSpec('tally-fresh');
    expect(spec.world.chainStyle).toBe(runV1.ChainStyle.TALLY);
    expect(spec.intervalStart).toBe(spec.warmup.examples);
    const lastSlice = poolSlice(spec, spec.iterations).indices;
    expect(Math.min(...poolSlice(spec, 1).indices, ...lastSlice)).toBe(spec.warmup.examples);
    expect(Math.max(...lastSlice)).toBeLessThan(spec.world.poolSize);
  });

  it('reads the worked-answer spec: tally-fresh in a world whose answers give the counts', () => {
    const fresh = readSpec('tally-fresh');
    const worked = readSpec('tally-worked');
    expect(worked.world.answerStyle).toBe(runV1.AnswerStyle.WORKED);
    expect({ ...worked, name: fresh.name, world: { ...worked.world, answerStyle: fresh.world.answerStyle } }).toEqual(fresh);
    const long = readSpec('tally-worked-long');
    expect([long.warmup.epochs * long.warmup.examples / long.warmup.batchSize, long.optimizer.learningRate]).toEqual([1200, 5e-5]);
    expect({ ...long, name: worked.name, warmup: worked.warmup, optimizer: worked.optimizer }).toEqual(worked);
    // The gold bound: the same warm-up on the gold chains of every prompt long's iterations sample too.
    const gold = readSpec('tally-worked-gold');
    const sampled = sampledPrompts(long);
    expect(gold.warmup).toEqual({ ...long.warmup, examples: Math.max(...sampled) + 1 });
    expect(new Set(sampled).size).toBe(gold.warmup.examples - long.warmup.examples);
    expect([gold.world, gold.seed, gold.intervalStart]).toEqual([long.world, long.seed, gold.warmup.examples]);
    // Its control: the warm-up's own prompts for about as many steps.
    const steps = readSpec('tally-worked-gold-steps');
    expect({ ...steps, name: gold.name, warmup: { ...steps.warmup, examples: gold.warmup.examples, epochs: gold.warmup.epochs } }).toEqual(gold);
    expect([steps.warmup.examples, (steps.warmup.examples * steps.warmup.epochs) / steps.warmup.batchSize]).toEqual([long.warmup.examples, 1650]);
  });

  it('reads the paper-data-regime spec: half the gold chains for the gold control\'s steps, then unseen answer-only prompts', () => {
    const long = readSpec('tally-worked-long');
    // More answer-only prompts than the warm-up saw, none of them its own, as many samples an
    // iteration as long's.
    const few = readSpec('tally-worked-few');
    expect([few.warmup.examples, (few.warmup.examples * few.warmup.epochs) / few.warmup.batchSize]).toEqual([long.warmup.examples / 2, 1650]);
    const unseen = sampledPrompts(few);
    expect([Math.min(...unseen), new Set(unseen).size]).toEqual([few.warmup.examples, 1536]);
    expect(poolSlice(few, 1).indices.length * few.samplesPerPrompt).toBe(poolSlice(long, 1).indices.length * long.samplesPerPrompt);
    expect([few.world, few.optimizer.continueWarmup, few.trainingMethod]).toEqual([long.world, true, runV1.TrainingMethod.CONTINUOUS]);
  });

  it('reads the default spec of npm start', () => {
    const spec = parseRunSpec(defaultFile);
    expect(spec.name).toBe('m-star-default');
    expect(spec.trainingMethod).toBe(runV1.TrainingMethod.CONTINUOUS);
    expect(spec.temperature.mode).toBe(runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K);
    expect(temperatureGrid(spec)).toEqual([0.6, 0.8, 1, 1.2]);
    expect(spec.evaluation.splits).toEqual([runV1.TestSplit.IN_DOMAIN, runV1.TestSplit.OUT_OF_DOMAIN]);
  });

  it('fills the documented defaults (the paper settings) for what a file leaves out', () => {
    const spec = parseRunSpec(minimal());
    expect(spec.samplesPerPrompt).toBe(16);
    expect(spec.intervalFraction).toBe(0.25);
    expect(spec.selection).toEqual({ rule: runV1.SelectionRule.PRM_TOP_K, k: 2, alpha: 0, chainCheck: runV1.ChainCheck.UNSPECIFIED, distinct: false, balanceAnswers: false, unsolvedOnly: false, greedyFirst: false, rationalize: false });
    expect(spec.aggregation).toBe(commonV1.Aggregation.MIN);
    expect(spec.prm.rolloutsPerStep).toBe(8);
    expect(spec.temperature.retuneEvery).toBe(2);
    const grid = temperatureGrid(spec);
    expect(grid).toHaveLength(14);
    expect(grid[0]).toBe(0.3);
    expect(grid[13]).toBe(1.6);
    expect(grid).toContain(0.7);
  });

  it('lets a file replace the grid form and override nested defaults', () => {
    const spec = parseRunSpec(minimal({ temperature: { grid: { list: { values: [1.2, 0.5] } }, mode: 'STATIC' }, selection: { rule: 'RANDOM_K' } }));
    expect(temperatureGrid(spec)).toEqual([0.5, 1.2]);
    expect(spec.temperature.rewardPassK).toBe(2);
    expect(spec.selection.rule).toBe(runV1.SelectionRule.RANDOM_K);
    expect(spec.selection.k).toBe(2);
  });

  it('reads the world\'s chain style, plain when left out', () => {
    expect(parseRunSpec(minimal()).world.chainStyle).toBe(runV1.ChainStyle.UNSPECIFIED);
    expect(parseRunSpec(minimal({ world: { chain_style: 'TALLY' } })).world.chainStyle).toBe(runV1.ChainStyle.TALLY);
    expect(parseRunSpec(minimal({ world: { chain_style: 'CHAIN_STYLE_PLAIN' } })).world.chainStyle).toBe(runV1.ChainStyle.PLAIN);
  });

  it('reads the world\'s answer style, short when left out', () => {
    expect(parseRunSpec(minimal()).world.answerStyle).toBe(runV1.AnswerStyle.UNSPECIFIED);
    expect(parseRunSpec(minimal({ world: { answer_style: 'WORKED' } })).world.answerStyle).toBe(runV1.AnswerStyle.WORKED);
    expect(() => parseRunSpec(minimal({ world: { answer_style: 'LONG' } }))).toThrow(/answer_style/);
  });

  it('reads optimizer.continue_warmup, off when left out', () => {
    expect(parseRunSpec(minimal()).optimizer.continueWarmup).toBe(false);
    expect(parseRunSpec(minimal({ optimizer: { continue_warmup: true } })).optimizer.continueWarmup).toBe(true);
  });

  it('reads warmup.hinted and selection.rationalize, off when left out', () => {
    expect(parseRunSpec(minimal()).warmup.hinted).toBe(false);
    const spec = parseRunSpec(minimal({ warmup: { hinted: true }, selection: { rationalize: true } }));
    expect([spec.warmup.hinted, spec.selection.rationalize]).toEqual([true, true]);
  });

  it('round-trips through formatRunSpec', () => {
    const spec = parseRunSpec(defaultFile);
    expect(parseRunSpec(formatRunSpec(spec))).toEqual(spec);
  });

  it.each([
    ['iterations: [', undefined],
    ['- a list', undefined],
    [minimal({ intervall_fraction: 0.5 }), 'intervall_fraction'],
    [minimal({ world: { pool_siz: 3 } }), 'world.pool_siz'],
    [minimal({ training_method: 'SIDEWAYS' }), 'training_method'],
    [minimal({ world: { chain_style: 'TALLIED' } }), 'world.chain_style'],
    [minimal({ top_p: 1.5 }), 'top_p'],
    [minimal({ interval_fraction: 0 }), 'interval_fraction'],
    [minimal({ interval_start: 100 }), 'interval_start'],
    [minimal({ samples_per_prompt: 0 }), 'samples_per_prompt'],
    [minimal({ temperature: { reward_pass_k: 20 } }), 'temperature.reward_pass_k'],
    [minimal({ temperature: { grid: { list: { values: [1, 1] } } } }), 'temperature.grid.list.values'],
    [minimal({ temperature: { grid: { list: { values: [0.5, -1] } } } }), 'temperature.grid.list.values[1]'],
    [minimal({ temperature: { grid: { range: { min: 1, max: 0.5, step: 0.1 } } } }), 'temperature.grid.range.max'],
    [minimal({ warmup: { examples: 500 } }), 'warmup.examples'],
    [minimal({ warmup: { vision_pretraining_steps: 100001 } }), 'warmup.vision_pretraining_steps'],
    [minimal({ optimizer: { schedule: 'COSINE', warmup_steps: 10, decay_steps: 5 } }), 'optimizer.decay_steps'],
    [minimal({ evaluation: { splits: ['IN_DOMAIN', 'IN_DOMAIN'] } }), 'evaluation.splits'],
    [minimal({ training_method: 'RESTART_FROM_LAST', optimizer: { continue_warmup: true } }), 'optimizer.continue_warmup'],
    [minimal({ selection: { rationalize: true } }), 'selection.rationalize'],
    ['name: x', 'world'],
  ])('rejects %j naming %s', (text, field) => {
    expect(fieldOf(() => parseRunSpec(text))).toBe(field);
  });

  it('knows every field of the generated RunSpec', () => {
    const keysOf = (schema: object): string[] => Object.keys(schema).sort();
    const full = runV1.RunSpec.fromPartial({
      model: {}, world: {}, warmup: {}, prm: {}, selection: {}, temperature: { grid: {} }, optimizer: {}, evaluation: {},
    });
    expect(keysOf(RUN_SPEC_KEYS)).toEqual(keysOf(full));
    for (const key of ['model', 'world', 'warmup', 'prm', 'selection', 'temperature', 'optimizer', 'evaluation'] as const) {
      expect(keysOf(RUN_SPEC_KEYS[key]), key).toEqual(keysOf(full[key]!));
    }
  });
});

describe('validateRunSpec', () => {
  it('rejects an UNSPECIFIED enum, which a zero-valued request carries', () => {
    const spec = { ...parseRunSpec(defaultFile), trainingMethod: runV1.TrainingMethod.UNSPECIFIED };
    expect(fieldOf(() => validateRunSpec(spec))).toBe('training_method');
    expect(fieldOf(() => validateRunSpec(runV1.RunSpec.fromPartial({ name: 'x' })))).toBe('model');
    const base = parseRunSpec(defaultFile);
    expect(fieldOf(() => validateRunSpec({ ...base, world: { ...base.world, chainStyle: 7 as runV1.ChainStyle } }))).toBe('world.chain_style');
    expect(fieldOf(() => validateRunSpec({ ...base, world: { ...base.world, answerStyle: 5 as runV1.AnswerStyle } }))).toBe('world.answer_style');
  });
});

describe('derived quantities', () => {
  const spec: ResolvedRunSpec = parseRunSpec(minimal({ interval_fraction: 0.3 }));

  it('cycles pool slices through the pool', () => {
    expect(poolSlice(spec, 1)).toEqual({ start: 0, indices: Array.from({ length: 30 }, (_, i) => i) });
    const fourth = poolSlice(spec, 4);
    expect(fourth.start).toBe(90);
    expect(fourth.indices.slice(8, 12)).toEqual([98, 99, 0, 1]);
    expect(() => poolSlice(spec, 0)).toThrow(InvalidArgumentError);
  });

  it('starts the slices at interval_start, past the warm-up prompts', () => {
    const late = parseRunSpec(minimal({ interval_fraction: 0.3, interval_start: 80 }));
    expect(poolSlice(late, 1).start).toBe(80);
    expect(poolSlice(late, 1).indices.slice(18, 22)).toEqual([98, 99, 0, 1]);
    expect(poolSlice(late, 2).start).toBe(10);
  });

  it('sweeps before iterations 1, 1 + r, ... and never under STATIC', () => {
    expect([1, 2, 3, 4, 5].map((i) => sweepsBefore(spec, i))).toEqual([true, false, true, false, true]);
    const fixed = parseRunSpec(minimal({ temperature: { mode: 'STATIC' } }));
    expect([1, 2, 3].map((i) => sweepsBefore(fixed, i))).toEqual([false, false, false]);
  });

  it('names store keys for a run and rejects bad run ids', () => {
    expect(runRecordKey('r-1')).toBe('runs.r-1');
    const a = runArtifacts('r-1');
    expect(a.policyCheckpoint(3)).toBe('runs/r-1/checkpoints/policy/v3');
    expect(a.dataset(2)).toBe('runs/r-1/datasets/iteration-2.jsonl');
    expect(a.complete(a.dataset(2))).toBe('runs/r-1/datasets/iteration-2.jsonl.COMPLETE');
    expect(a.complete(a.prmCheckpoint(0))).toBe('runs/r-1/checkpoints/prm/v0/COMPLETE');
    expect(() => runRecordKey('a.b')).toThrow();
  });
});
