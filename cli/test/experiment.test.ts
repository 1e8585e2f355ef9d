import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commonV1, eventsV1, runV1 } from '@mstar/contracts';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { parseRunSpec, poolSlice, runArtifacts } from '@mstar/runspec';
import { createFsArtifactStore } from '@mstar/stores';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadExperiment,
  meanStd,
  parseExperiment,
  parseSeedList,
  planRuns,
  readResult,
  runDir,
  runExperiment,
  summarise,
  sweepPoints,
  writeReport,
  writeResult,
  type Experiment,
  type RunFunction,
  type RunResult,
  type RunRow,
} from '../src/experiment/index.js';

const SPECS = fileURLToPath(new URL('../../specs/', import.meta.url));
const EXPERIMENTS = fileURLToPath(new URL('../../experiments/', import.meta.url));

/** The row `name` of `experiment`; throws unless it is there and runs (not a warm-up row). */
function runRow(experiment: Experiment, name: string): RunRow {
  const row = experiment.rows.find((r) => r.name === name);
  if (row?.kind !== 'run') throw new Error(`row ${name} of ${experiment.name} does not run`);
  return row;
}

const parse = (text: string, name = 'exp'): Promise<Experiment> => parseExperiment(text, { name, source: `${name}.yaml`, dir: SPECS, readBase: (p) => readFile(p, 'utf8') });

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<InvalidArgumentError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return error as InvalidArgumentError;
}

const TWO_ROWS = `
base: tiny.yaml
seeds: [3, 4]
rows:
  - name: warm-up
    warmup_of: a
  - name: a
    description: as tiny.yaml
  - name: b
    overrides:
      intervalFraction: 0.5
      temperature: { mode: STATIC, grid: { range: { min: 0.5, max: 0.7, step: 0.1 } } }
`;

describe('experiment definitions', () => {
  it('resolve every row as base + overrides with the seed and name the experiment sets', async () => {
    const exp = await parse(TWO_ROWS);
    expect(exp.seeds).toEqual([3, 4]);
    expect(exp.rows.map((r) => `${r.kind}:${r.name}`)).toEqual(['warmup:warm-up', 'run:a', 'run:b']);
    const [a, b] = [runRow(exp, 'a'), runRow(exp, 'b')];
    const spec = b.specFor(4);
    expect(spec.seed).toBe(4);
    expect(spec.name).toBe('exp-b');
    // camelCase and snake_case keys name the same setting; the rest of a mapping is the base's.
    expect(spec.intervalFraction).toBe(0.5);
    expect(spec.temperature.mode).toBe(runV1.TemperatureMode.STATIC);
    expect(spec.temperature.retuneEvery).toBe(1);
    expect(spec.temperature.rewardPassK).toBe(2);
    // The grid is a oneof: the override's range replaces the base's list.
    expect(spec.temperature.grid.grid).toEqual({ $case: 'range', value: { min: 0.5, max: 0.7, step: 0.1 } });
    // The world stays the base's at every seed.
    expect(a.specFor(3).world).toEqual(b.specFor(9).world);
    expect(a.specFor(3).world?.worldSeed).toBe(1);
  });

  it('resolve a row that extends an earlier one as that row\'s spec + its own overrides', async () => {
    const exp = await parse(`${TWO_ROWS}  - name: c
    extends: b
    overrides:
      temperature: { static_temperature: 0.6 }
      top_p: 0.9
`);
    const [b, c] = [runRow(exp, 'b'), runRow(exp, 'c')];
    expect(c.base).toBe(b.base);
    const spec = c.specFor(4);
    // b's overrides hold, c's apply over them, and the rest is the base's.
    expect([spec.intervalFraction, spec.temperature.mode, spec.temperature.staticTemperature, spec.topP]).toEqual([0.5, runV1.TemperatureMode.STATIC, 0.6, 0.9]);
    expect(spec.temperature.grid.grid).toEqual(b.specFor(4).temperature.grid.grid);
    expect({ ...spec, name: 'exp-b', topP: b.specFor(4).topP, temperature: b.specFor(4).temperature }).toEqual(b.specFor(4));
    // A later row names what it extends; a row extends only an earlier run row, and takes its base.
    const later = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n    extends: b\n  - name: b\n'));
    expect([later.field, later.message]).toEqual(['rows[0].extends', 'exp.yaml: rows[0].extends: "b" is not an earlier row that runs (rows so far: none)']);
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: w\n    warmup_of: a\n  - name: a\n    extends: w\n'))).field).toBe('rows[1].extends');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: b\n    extends: a\n    base: default.yaml\n'))).field).toBe('rows[1].base');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: w\n    warmup_of: a\n    extends: a\n  - name: a\n'))).field).toBe('rows[0].warmup_of');
    // An override the extended row's spec cannot take is named under the row that gives it.
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: b\n    extends: a\n    overrides: { top_p: 2 }\n'))).field).toBe('rows[1].overrides.top_p');
  });

  it('reject unknown keys, naming them', async () => {
    expect((await rejection(parse('base: tiny.yaml\nrowz: []\n'))).field).toBe('rowz');
    const row = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n    overide: { top_p: 1 }\n'));
    expect(row.field).toBe('rows[0].overide');
    expect(row.message).toContain('known: name, description, base, extends, overrides, warmup_of');
  });

  it('reject bad overrides with the run-spec field that is wrong', async () => {
    const bad = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n    overrides: { top_p: 2 }\n'));
    expect(bad.field).toBe('rows[0].overrides.top_p');
    expect(bad.message).toBe('exp.yaml: rows[0] (a) overrides: top_p: must be in (0, 1], got 2');
    const unknown = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: b\n    overrides: { temprature: { mode: STATIC } }\n'));
    expect(unknown.field).toBe('rows[1].overrides.temprature');
    expect(unknown.message).toContain('unknown setting');
    const mode = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n    overrides: { temperature: { mode: HOT } }\n'));
    expect(mode.field).toBe('rows[0].overrides.temperature.mode');
    const seed = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n    overrides: { seed: 5 }\n'));
    expect(seed.field).toBe('rows[0].overrides.seed');
  });

  it('reject rows that cannot be run or compared', async () => {
    expect((await rejection(parse('rows:\n  - name: a\n'))).field).toBe('rows[0].base');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: A b\n'))).field).toBe('rows[0].name');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: a\n'))).field).toBe('rows[1].name');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: w\n    warmup_of: nope\n  - name: a\n'))).field).toBe('rows[0].warmup_of');
    expect((await rejection(parse('base: tiny.yaml\nrows:\n  - name: w\n    warmup_of: a\n    overrides: { top_p: 1 }\n  - name: a\n'))).field).toBe('rows[0].warmup_of');
    const world = await rejection(parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: b\n    overrides: { world: { world_seed: 2 } }\n'));
    expect(world.field).toBe('rows[1]');
    expect(world.message).toContain('share one world');
    // A larger pool extends the same prompts: the rows still compare.
    const pools = await parse('base: tiny.yaml\nrows:\n  - name: a\n  - name: b\n    overrides: { world: { pool_size: 4000 } }\n');
    expect(pools.rows.map((r) => (r.kind === 'run' ? r.specFor(1).world?.poolSize : undefined))).toEqual([48, 4000]);
    expect((await rejection(parse('base: missing.yaml\nrows:\n  - name: a\n'))).field).toBe('base');
    expect((await rejection(parse('base: tiny.yaml\nseeds: [1, x]\nrows:\n  - name: a\n'))).field).toBe('seeds[1]');
  });

  it('parse --seeds lists', () => {
    expect(parseSeedList('1, 2,3')).toEqual([1, 2, 3]);
    expect(() => parseSeedList('1,1')).toThrow('has duplicates');
    expect(() => parseSeedList('1,-2')).toThrow('seeds[1]: must be an integer');
    expect(() => parseSeedList('')).toThrow(InvalidArgumentError);
  });

  it('the shipped experiments load, and the paper table has the rows of the method notes', async () => {
    const paper = await loadExperiment(join(EXPERIMENTS, 'paper-table.yaml'));
    expect(paper.seeds).toEqual([1, 2, 3]);
    expect(paper.rows.map((r) => r.name)).toEqual(['warm-up', 'rft-100', 'rest-em-100', 'continuous-100', 'continuous-25', 'random-2', 'prm-top-2', 'm-star-pass-at-k', 'm-star-reward-pass']);
    const spec = (name: string) => runRow(paper, name).specFor(1);
    expect(spec('rft-100')).toMatchObject({ trainingMethod: runV1.TrainingMethod.RESTART_FROM_LAST, intervalFraction: 1, iterations: 2 });
    expect(spec('rest-em-100')).toMatchObject({ trainingMethod: runV1.TrainingMethod.RESTART_FROM_INITIAL, intervalFraction: 1 });
    expect(spec('continuous-25').selection.rule).toBe(runV1.SelectionRule.ALL_CORRECT);
    expect(spec('continuous-25').temperature).toMatchObject({ mode: runV1.TemperatureMode.STATIC, staticTemperature: 1 });
    expect(spec('random-2').selection).toMatchObject({ rule: runV1.SelectionRule.RANDOM_K, k: 2 });
    expect(spec('m-star-pass-at-k').temperature.mode).toBe(runV1.TemperatureMode.BALANCER_PASS_AT_K);
    expect(spec('m-star-reward-pass')).toMatchObject({ selection: { rule: runV1.SelectionRule.PRM_TOP_K, k: 2 }, temperature: { mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K } });
    // The same data in every row: the pool seen twice.
    for (const row of paper.rows) if (row.kind === 'run') expect(row.specFor(1).intervalFraction * row.specFor(1).iterations).toBe(2);
    const dynamics = await loadExperiment(join(EXPERIMENTS, 'temperature-dynamics.yaml'));
    expect(dynamics.rows.map((r) => (r.kind === 'run' ? r.specFor(1).temperature.staticTemperature : 0))).toEqual([0.6, 1, 1.4]);
    expect((await loadExperiment(join(EXPERIMENTS, 'tiny.yaml'))).rows).toHaveLength(3);
    // samples-per-prompt: each row is a paper-table row with only K changed.
    const k = await loadExperiment(join(EXPERIMENTS, 'samples-per-prompt.yaml'));
    const samePaperRow = { 'continuous-k4': 'continuous-25', 'continuous-k32': 'continuous-25', 'm-star-pass-at-k-k32': 'm-star-pass-at-k' } as const;
    expect(k.rows.map((r) => r.name)).toEqual(['warm-up', ...Object.keys(samePaperRow)]);
    for (const [name, paperName] of Object.entries(samePaperRow)) {
      const { name: _n, samplesPerPrompt, ...rest } = runRow(k, name).specFor(1);
      const { name: _p, samplesPerPrompt: paperK, ...paperRest } = spec(paperName);
      expect([samplesPerPrompt, paperK]).toEqual([name.endsWith('k4') ? 4 : 32, 16]);
      expect(rest).toEqual(paperRest);
    }
  });

  it('fresh-prompts keeps paper-table\'s warm-up and samples unseen prompts from iteration 2 on', async () => {
    const fresh = await loadExperiment(join(EXPERIMENTS, 'fresh-prompts.yaml'));
    const spec = runRow(fresh, 'continuous-fresh').specFor(1);
    const paper = runRow(await loadExperiment(join(EXPERIMENTS, 'paper-table.yaml')), 'continuous-100');
    // Same v0 (the warm-up reads the first warmup.examples pool prompts, a prefix of either pool).
    expect(spec.warmup).toEqual(paper.specFor(1).warmup);
    expect(poolSlice(spec, 1).indices).toEqual(poolSlice(paper.specFor(1), 1).indices);
    for (let iteration = 2; iteration <= spec.iterations; iteration++) {
      expect(Math.min(...poolSlice(spec, iteration).indices)).toBeGreaterThanOrEqual(spec.warmup.examples);
    }
  });

  it('tally-worked runs specs/tally-worked-long.yaml, and m-star-carry differs only in carrying the warm-up\'s optimizer', async () => {
    const tally = await loadExperiment(join(EXPERIMENTS, 'tally-worked.yaml'));
    const specOf = (name: string) => runRow(tally, name).specFor(2);
    const long = parseRunSpec(await readFile(join(SPECS, 'tally-worked-long.yaml'), 'utf8'));
    expect({ ...specOf('m-star'), name: long.name }).toEqual({ ...long, seed: 2 });
    const carry = specOf('m-star-carry');
    expect(carry.optimizer.continueWarmup).toBe(true);
    expect({ ...carry, name: 'x', optimizer: { ...carry.optimizer, continueWarmup: false } }).toEqual({ ...specOf('m-star'), name: 'x' });
  });

  it('tally-worked-few runs specs/tally-worked-few.yaml; m-star-8-epochs differs only in training 4 times as long, m-star-consistent and m-star-image-checked only in checking chains, m-star-consistent-8-epochs in both, m-star-consistent-balanced in what it keeps, m-star-consistent-balanced-wide also in sampling twice the prompts half as often, m-star-consistent-unsolved-wide from that in keeping only prompts not answered greedily, m-star-greedy-first-wide in sampling 8 times only the prompts not answered greedily, m-star-greedy-first-fresh from that in a fresh optimizer at 2e-5 for iteration 1, m-star-greedy-first-fresh-5 from that in 5 iterations over a pool that holds them, m-star-greedy-first-fresh-k16 in sampling 16 times, m-star-greedy-first-fresh-4ep in training 4 epochs an iteration; specs/tally-worked-few-gold.yaml is m-star-greedy-first-fresh\'s gold bound', async () => {
    const few = await loadExperiment(join(EXPERIMENTS, 'tally-worked-few.yaml'));
    const [warm] = few.rows;
    expect([warm?.kind === 'warmup' && warm.of, few.seeds]).toEqual(['m-star', [1, 2, 3]]);
    const row = (name: string): RunRow => runRow(few, `m-star${name}`);
    const [mStar, eight, consistent, image] = [row(''), row('-8-epochs'), row('-consistent'), row('-image-checked')];
    const [both, balanced, wide] = [row('-consistent-8-epochs'), row('-consistent-balanced'), row('-consistent-balanced-wide')];
    const [unsolved, greedyFirst, fresh] = [row('-consistent-unsolved-wide'), row('-greedy-first-wide'), row('-greedy-first-fresh')];
    const [fiveIterations, sixteen, fourEpochs] = [row('-greedy-first-fresh-5'), row('-greedy-first-fresh-k16'), row('-greedy-first-fresh-4ep')];
    const [hinted, hintedWarmup] = [row('-greedy-first-fresh-hint'), row('-hinted-warmup')];
    const spec = parseRunSpec(await readFile(join(SPECS, 'tally-worked-few.yaml'), 'utf8'));
    expect({ ...mStar.specFor(2), name: spec.name }).toEqual({ ...spec, seed: 2 });
    const longer = eight.specFor(2);
    expect([longer.optimizer.epochsPerIteration, spec.optimizer.epochsPerIteration]).toEqual([8, 2]);
    expect({ ...longer, name: spec.name, optimizer: spec.optimizer }).toEqual({ ...spec, seed: 2 });
    expect(spec.selection.chainCheck).toBe(runV1.ChainCheck.UNSPECIFIED);
    for (const [row, check] of [[consistent, runV1.ChainCheck.CONSISTENT], [image, runV1.ChainCheck.IMAGE]] as const) {
      const checked = row.specFor(2);
      expect(checked.selection.chainCheck).toBe(check);
      expect({ ...checked, name: spec.name, selection: spec.selection }).toEqual({ ...spec, seed: 2 });
    }
    const checkedLonger = both.specFor(2);
    expect([checkedLonger.selection.chainCheck, checkedLonger.optimizer.epochsPerIteration]).toEqual([runV1.ChainCheck.CONSISTENT, 8]);
    expect({ ...checkedLonger, name: spec.name, selection: spec.selection, optimizer: spec.optimizer }).toEqual({ ...spec, seed: 2 });
    const keptOtherwise = balanced.specFor(2);
    expect(keptOtherwise.selection).toEqual({ ...spec.selection, chainCheck: runV1.ChainCheck.CONSISTENT, distinct: true, balanceAnswers: true });
    expect({ ...keptOtherwise, name: spec.name, selection: spec.selection }).toEqual({ ...spec, seed: 2 });
    // The same 4,096 samples an iteration over 1,024 prompts, none the warm-up's (the first 1,200)
    // or the PRM's (the last 96 of the pool).
    const wider = wide.specFor(2);
    const slices = [1, 2, 3].map((i) => poolSlice(wider, i).indices);
    expect(slices.map((s) => [s.length, s[0], s.at(-1)])).toEqual([[1024, 1200, 2223], [1024, 2224, 3247], [1024, 3248, 4271]]);
    expect([wider.samplesPerPrompt * 1024, wider.world.poolSize - 96]).toEqual([spec.samplesPerPrompt * 512, 4272]);
    expect({ ...wider, name: spec.name, world: spec.world, intervalFraction: spec.intervalFraction, samplesPerPrompt: spec.samplesPerPrompt }).toEqual({ ...keptOtherwise, name: spec.name });
    const hard = unsolved.specFor(2);
    expect(hard.selection).toEqual({ ...wider.selection, balanceAnswers: false, unsolvedOnly: true });
    expect({ ...hard, name: wider.name, selection: wider.selection }).toEqual(wider);
    const first = greedyFirst.specFor(2);
    expect([first.selection, first.samplesPerPrompt]).toEqual([{ ...wider.selection, greedyFirst: true }, 8]);
    expect({ ...first, name: wider.name, selection: wider.selection, samplesPerPrompt: wider.samplesPerPrompt }).toEqual(wider);
    const fromFresh = fresh.specFor(2);
    expect([first.optimizer.continueWarmup, first.optimizer.schedule, first.optimizer.learningRate]).toEqual([true, runV1.LrSchedule.CONSTANT, 5e-5]);
    expect(fromFresh.optimizer).toEqual({ ...first.optimizer, continueWarmup: false, learningRate: 2e-5 });
    expect({ ...fromFresh, name: first.name, optimizer: first.optimizer }).toEqual(first);
    // Five slices of 1,024 between the warm-up's prompts and the PRM's.
    const longer5 = fiveIterations.specFor(2);
    const slices5 = [1, 2, 3, 4, 5].map((i) => poolSlice(longer5, i).indices);
    expect(slices5.map((s) => [s.length, s[0], s.at(-1)])).toEqual([[1024, 1200, 2223], [1024, 2224, 3247], [1024, 3248, 4271], [1024, 4272, 5295], [1024, 5296, 6319]]);
    expect([longer5.iterations, longer5.world.poolSize - 96]).toEqual([5, 6320]);
    expect({ ...longer5, name: fromFresh.name, iterations: fromFresh.iterations, world: fromFresh.world, intervalFraction: fromFresh.intervalFraction }).toEqual(fromFresh);
    const moreSamples = sixteen.specFor(2);
    expect([moreSamples.samplesPerPrompt, moreSamples.temperature.evalSamplesPerPrompt]).toEqual([16, fromFresh.temperature.evalSamplesPerPrompt]);
    expect({ ...moreSamples, name: fromFresh.name, samplesPerPrompt: fromFresh.samplesPerPrompt }).toEqual(fromFresh);
    const trainedLonger = fourEpochs.specFor(2);
    expect([trainedLonger.optimizer.epochsPerIteration, fromFresh.optimizer.epochsPerIteration]).toEqual([4, 2]);
    expect({ ...trainedLonger, name: fromFresh.name, optimizer: fromFresh.optimizer }).toEqual(fromFresh);
    const rationalized = hinted.specFor(2);
    expect([rationalized.warmup.hinted, rationalized.selection.rationalize, fromFresh.warmup.hinted, fromFresh.selection.rationalize]).toEqual([true, true, false, false]);
    expect({ ...rationalized, name: fromFresh.name, warmup: fromFresh.warmup, selection: fromFresh.selection }).toEqual(fromFresh);
    expect([rationalized.warmup, rationalized.selection]).toEqual([{ ...fromFresh.warmup, hinted: true, epochs: 11 }, { ...fromFresh.selection, rationalize: true }]);
    // Twice the examples at half the epochs: as many warm-up steps as the other rows.
    expect((2 * rationalized.warmup.examples * rationalized.warmup.epochs) / rationalized.warmup.batchSize).toBe((spec.warmup.examples * spec.warmup.epochs) / spec.warmup.batchSize);
    // The control: the same hinted warm-up, no rationalization.
    expect(hintedWarmup.specFor(2)).toEqual({ ...rationalized, name: hintedWarmup.specFor(2).name, selection: fromFresh.selection });
    expect(few.rows).toHaveLength(25);
    // specs/tally-worked-few-gold.yaml bounds what m-star-greedy-first-fresh can add: the same warm-up
    // on the gold chains of every prompt that row's iterations sample too, for about as many steps.
    const gold = parseRunSpec(await readFile(join(SPECS, 'tally-worked-few-gold.yaml'), 'utf8'));
    const sampled = [1, 2, 3].flatMap((i) => poolSlice(fromFresh, i).indices);
    expect([Math.min(...sampled), new Set(sampled).size]).toEqual([spec.warmup.examples, 3072]);
    expect(gold.warmup).toEqual({ ...spec.warmup, examples: Math.max(...sampled) + 1, epochs: 6 });
    expect([Math.ceil(gold.warmup.examples / gold.warmup.batchSize) * gold.warmup.epochs, (spec.warmup.examples / spec.warmup.batchSize) * spec.warmup.epochs]).toEqual([1602, 1650]);
    expect([gold.world, gold.seed, Math.min(...poolSlice(gold, 1).indices)]).toEqual([{ ...spec.world, poolSize: 4496 }, spec.seed, gold.warmup.examples]);
  });

  it("tally-worked-few's hint- rows are the paper table's rows on m-star-greedy-first-fresh-hint's settings, each changing what its paper-table row changes", async () => {
    const few = await loadExperiment(join(EXPERIMENTS, 'tally-worked-few.yaml'));
    const specOf = (name: string) => runRow(few, name).specFor(2);
    const mStar = specOf('m-star-greedy-first-fresh-hint');
    const changes = (name: string, changed: Partial<typeof mStar>) => expect(specOf(name)).toEqual({ ...mStar, name: `tally-worked-few-${name}`, ...changed });
    changes('hint-pass-at-k', { temperature: { ...mStar.temperature, mode: runV1.TemperatureMode.BALANCER_PASS_AT_K } });
    const staticT = { ...mStar.temperature, mode: runV1.TemperatureMode.STATIC };
    expect([mStar.temperature.mode, staticT.staticTemperature]).toEqual([runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K, 1]);
    changes('hint-prm-top-2', { temperature: staticT });
    changes('hint-static-t08', { temperature: { ...staticT, staticTemperature: 0.8 } });
    changes('hint-random-2', { temperature: staticT, selection: { ...mStar.selection, rule: runV1.SelectionRule.RANDOM_K } });
    const allCorrect = { temperature: staticT, selection: { ...mStar.selection, rule: runV1.SelectionRule.ALL_CORRECT } };
    changes('hint-all-correct', allCorrect);
    changes('hint-rft', { ...allCorrect, trainingMethod: runV1.TrainingMethod.RESTART_FROM_LAST });
    changes('hint-rest-em', { ...allCorrect, trainingMethod: runV1.TrainingMethod.RESTART_FROM_INITIAL });
    changes('hint-all-correct-100', { ...allCorrect, intervalFraction: 0.7033, iterations: 1 });
    // The 100% row samples the three slices' 3,072 prompts in its one iteration.
    expect(poolSlice(specOf('hint-all-correct-100'), 1).indices).toEqual([1, 2, 3].flatMap((i) => poolSlice(mStar, i).indices));
    // The table's warm-up row is the v0 all these rows share, the hinted warm-up, not the plain one.
    const warmups = few.rows.flatMap((r) => (r.kind === 'warmup' ? [[r.name, r.of]] : []));
    expect(warmups).toEqual([
      ['warm-up', 'm-star'],
      ['hint-warm-up', 'm-star-greedy-first-fresh-hint'],
    ]);
  });
});

/** An IterationStats row with the numbers a test cares about. */
const stats = (iteration: number, over: Partial<commonV1.IterationStats> = {}): commonV1.IterationStats =>
  commonV1.IterationStats.fromPartial({ iteration, temperature: iteration === 0 ? 0 : 1, evalTemperature: 1, samplesPerPrompt: 8, rewardPassK: 2, datasetSize: 100, ...over });

/** A succeeded run record with one row per iteration 0..n. */
const runRecord = (runId: string, rows: commonV1.IterationStats[], state = runV1.RunState.SUCCEEDED): runV1.Run => runV1.Run.fromPartial({ runId, state, summary: rows });

/** Rows a and b share a warm-up; c trains a longer one. */
const SAME_AND_OTHER_WARMUP = `
base: tiny.yaml
rows:
  - name: a
  - name: b
    overrides: { intervalFraction: 0.5 }
  - name: c
    overrides: { warmup: { epochs: 3 } }`;

describe('running an experiment', () => {
  let out: string;
  beforeEach(async () => {
    out = await mkdtemp(join(tmpdir(), 'mstar-experiment-'));
  });
  afterEach(async () => {
    await rm(out, { recursive: true, force: true });
  });

  /** A fake runLocal: records the calls and answers a small successful run (or what `answer` says). */
  function fakeRunner(answer?: (runId: string) => runV1.Run | Error) {
    const calls: string[] = [];
    const run: RunFunction = async ({ specPath, outDir, runId }) => {
      calls.push(runId);
      expect(specPath).toBe(join(outDir, 'spec.yaml'));
      await writeFile(join(outDir, 'services.log'), 'a run was here\n');
      const result = answer?.(runId) ?? runRecord(runId, [stats(0, { greedyAccuracyInDomain: 0.2 }), stats(1, { greedyAccuracyInDomain: 0.3 })]);
      if (result instanceof Error) throw result;
      return { run: result, seconds: 12 };
    };
    return { calls, run };
  }

  it('runs seed by seed, then skips complete runs and redoes interrupted and failed ones from scratch', async () => {
    const exp = await parse(TWO_ROWS);
    const lines: string[] = [];
    const log = (line: string): void => void lines.push(line);
    const first = fakeRunner();
    const outcome = await runExperiment({ experiment: exp, outDir: out, seeds: [3, 4], run: first.run, log });
    expect(first.calls).toEqual(['exp-a-s3', 'exp-b-s3', 'exp-a-s4', 'exp-b-s4']);
    expect(outcome).toEqual({ ran: 4, skipped: 0, failed: [] });
    const stored = await readResult(runDir(out, 'b', 4));
    expect(stored).toMatchObject({ row: 'b', seed: 4, runId: 'exp-b-s4', wallSeconds: 12 });
    expect(stored.iterations.map((s) => s.greedyAccuracyInDomain)).toEqual([0.2, 0.3]);
    expect(await readFile(join(runDir(out, 'b', 4), 'spec.yaml'), 'utf8')).toContain('interval_fraction: 0.5');
    expect(lines.some((l) => l.includes('[4/4] b seed 4: done in 12 s; in-domain greedy 20.0% -> 30.0%'))).toBe(true);

    // Everything complete: nothing runs.
    const second = fakeRunner();
    expect(await runExperiment({ experiment: exp, outDir: out, seeds: [3, 4], run: second.run, log })).toEqual({ ran: 0, skipped: 4, failed: [] });
    expect(second.calls).toEqual([]);

    // An interrupted run (no result.json, leftovers) is deleted and redone; one that fails is kept
    // for inspection; a runner that throws does not stop the others.
    const interrupted = runDir(out, 'a', 4);
    await rm(join(interrupted, 'result.json'));
    await writeFile(join(interrupted, 'half-written.bin'), 'x');
    await rm(join(runDir(out, 'b', 3), 'result.json'));
    await rm(join(runDir(out, 'a', 3), 'result.json'));
    const third = fakeRunner((id) => (id === 'exp-b-s3' ? runRecord(id, [], runV1.RunState.FAILED) : id === 'exp-a-s3' ? new Error('boom') : runRecord(id, [stats(0)])));
    const outcome3 = await runExperiment({ experiment: exp, outDir: out, seeds: [3, 4], run: third.run, log });
    expect(third.calls).toEqual(['exp-a-s3', 'exp-b-s3', 'exp-a-s4']);
    expect(outcome3.ran).toBe(1);
    expect(outcome3.skipped).toBe(1);
    expect(outcome3.failed).toEqual([
      { row: 'a', seed: 3, error: 'boom' },
      { row: 'b', seed: 3, error: 'run ended RUN_STATE_FAILED' },
    ]);
    expect((await readdir(interrupted)).sort()).toEqual(['result.json', 'services.log', 'spec.yaml']);
    expect(lines.some((l) => l.includes('holds an unfinished run: deleted, redone from scratch'))).toBe(true);
    expect(await readdir(runDir(out, 'b', 3))).not.toContain('result.json');

    // --only: one row (a warm-up row runs the row it reads), one seed.
    const fourth = fakeRunner();
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['warm-up'], run: fourth.run, log });
    expect(fourth.calls).toEqual(['exp-a-s3']);
    await expect(runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['c'], run: fourth.run, log })).rejects.toThrow('--only: c is not a row of exp');
  });

  it('under reuseWarmup starts a run from the policy v0 of a complete run at its seed with the same warm-up settings, and only then', async () => {
    const exp = await parse(`${SAME_AND_OTHER_WARMUP}
  - name: d
    overrides: { iterations: 1 }
  - name: e
    overrides: { world: { poolSize: 96 } }
`);
    /** Per run: the v0 weights it found already there, or 'trained' after writing its own. */
    const found: Record<string, string> = {};
    const run: RunFunction = async ({ outDir, runId }) => {
      const store = await createFsArtifactStore({ root: join(outDir, 'artifacts') });
      const prefix = runArtifacts(runId).policyCheckpoint(0);
      if (await store.exists(`${prefix}/COMPLETE`)) found[runId] = new TextDecoder().decode(await store.get(`${prefix}/weights.bin`));
      else {
        found[runId] = 'trained';
        await store.put(`${prefix}/weights.bin`, new TextEncoder().encode(`v0 of ${runId}`));
        await store.put(`${prefix}/COMPLETE`, new TextEncoder().encode('done'));
      }
      await store.close();
      return { run: runRecord(runId, [stats(0), stats(1)]), seconds: 5 };
    };
    const lines: string[] = [];
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['a', 'b', 'c', 'e'], run, reuseWarmup: true, log: (l) => void lines.push(l) });
    // b trains what a trained; c's warm-up is longer; e's pool is larger (warmupSettings compares the whole world).
    expect(found).toEqual({ 'exp-a-s3': 'trained', 'exp-b-s3': 'v0 of exp-a-s3', 'exp-c-s3': 'trained', 'exp-e-s3': 'trained' });
    expect([(await readResult(runDir(out, 'a', 3))).warmupFrom, (await readResult(runDir(out, 'b', 3))).warmupFrom, (await readResult(runDir(out, 'c', 3))).warmupFrom]).toEqual([undefined, 'exp-a-s3', undefined]);
    expect(lines).toContain('[2/4] b seed 3: policy v0 copied from exp-a-s3 (the same warm-up settings and seed; trained by exp-a-s3)');
    /** Runs row d afresh, and returns the v0 it found and the run its result names as v0's trainer. */
    const runD = async (reuseWarmup: boolean) => {
      await rm(runDir(out, 'd', 3), { recursive: true, force: true });
      await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['d'], run, reuseWarmup, log: () => undefined });
      return [found['exp-d-s3'], (await readResult(runDir(out, 'd', 3))).warmupFrom];
    };
    // A donor that no longer holds v0 (a's artifacts gone) is passed over; b's copy still names a as
    // the run that trained it. Without reuseWarmup every run trains its own.
    await rm(join(runDir(out, 'a', 3), 'artifacts'), { recursive: true });
    expect(await runD(true)).toEqual(['v0 of exp-a-s3', 'exp-a-s3']);
    expect(await runD(false)).toEqual(['trained', undefined]);
    // A donor whose v0 has lost its COMPLETE marker (b's copy, its weights still there) is passed over too.
    const copied = await createFsArtifactStore({ root: join(runDir(out, 'b', 3), 'artifacts') });
    expect(await copied.delete(`${runArtifacts('exp-b-s3').policyCheckpoint(0)}/COMPLETE`)).toBe(true);
    await copied.close();
    expect(await runD(true)).toEqual(['trained', undefined]);
  });

  it('stops a run that trains another v0 than a complete run at its seed with the same warm-up settings, at v0\'s evaluation', async () => {
    const exp = await parse(SAME_AND_OTHER_WARMUP);
    const v0 = { greedyAccuracyValidation: 0.5, greedyAccuracyInDomain: 0.4, greedyAccuracyOutOfDomain: 0.1 };
    const evaluated = (iteration: number, over: Partial<commonV1.IterationStats>): eventsV1.Event =>
      eventsV1.Event.fromPartial({ eventId: `e${iteration}`, payload: { $case: 'iterationEvaluated', value: { stats: stats(iteration, over) } } });
    /** A run whose policy v0 scores `scores`: it reports v0's and v1's evaluations to stopWhen and ends CANCELLED at the first reason. */
    const runScoring = (scores: Partial<commonV1.IterationStats>) => {
      const seen: { runId: string; watched: boolean; reasons: (string | undefined)[] }[] = [];
      const run: RunFunction = ({ runId, stopWhen }) => {
        const reasons = [evaluated(0, scores), evaluated(1, { greedyAccuracyInDomain: 0.9 })].map((e) => stopWhen?.(e));
        seen.push({ runId, watched: stopWhen !== undefined, reasons });
        const state = reasons.some((r) => r !== undefined) ? runV1.RunState.CANCELLED : runV1.RunState.SUCCEEDED;
        return Promise.resolve({ run: runRecord(runId, [stats(0, scores), stats(1)], state), seconds: 5 });
      };
      return { seen, run };
    };
    const there = { arch: 'x64', cpu: 'Other CPU', simd: ['avx512f', 'avx2', 'fma', 'avx'] };
    const here = { arch: 'x64', cpu: 'This CPU', simd: ['avx2', 'fma', 'avx'] };
    // Row a runs first, elsewhere; its result records the machine.
    const first = runScoring(v0);
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['a'], run: first.run, platform: there, log: () => undefined });
    expect(first.seen).toEqual([{ runId: 'exp-a-s3', watched: false, reasons: [undefined, undefined] }]);
    expect((await readResult(runDir(out, 'a', 3))).platform).toEqual(there);

    // Here v0 scores another in-domain accuracy: b is stopped at v0, c (another warm-up) is not watched.
    const other = runScoring({ ...v0, greedyAccuracyInDomain: 0.35 });
    const outcome = await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['b', 'c'], run: other.run, platform: here, log: () => undefined });
    const reason =
      'policy v0 is not the v0 of exp-a-s3, a complete run at this seed with the same warm-up settings (greedy in-domain 35.0% against 40.0%): ' +
      'trained here, on This CPU (x64, avx2 fma avx); that run ran on Other CPU (x64, avx512f avx2 fma avx). Stopped so that the row does not join runs that started from another policy: ' +
      'run it on a machine that trains that v0, or with --reuse-warmup where that v0 is kept, or into another --out';
    expect(other.seen).toEqual([
      { runId: 'exp-b-s3', watched: true, reasons: [reason, reason] },
      { runId: 'exp-c-s3', watched: false, reasons: [undefined, undefined] },
    ]);
    expect(outcome.failed).toEqual([{ row: 'b', seed: 3, error: `run ended RUN_STATE_CANCELLED: ${reason}` }]);
    expect(await readdir(runDir(out, 'b', 3))).not.toContain('result.json');

    // The same v0 goes on (later iterations are not compared), and a result whose machine is not
    // recorded (written before machines were, or malformed) is named as such.
    const same = runScoring(v0);
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['b'], run: same.run, platform: here, log: () => undefined });
    expect(same.seen).toEqual([{ runId: 'exp-b-s3', watched: true, reasons: [undefined, undefined] }]);
    expect((await readResult(runDir(out, 'b', 3))).platform).toEqual(here);
    const unrecorded = JSON.parse(await readFile(join(runDir(out, 'a', 3), 'result.json'), 'utf8')) as Record<string, unknown>;
    unrecorded['platform'] = { arch: 'x64', cpu: 7, simd: 'avx2' };
    await writeFile(join(runDir(out, 'a', 3), 'result.json'), JSON.stringify(unrecorded));
    expect(await readResult(runDir(out, 'a', 3))).not.toHaveProperty('platform');
    await rm(runDir(out, 'b', 3), { recursive: true });
    const stale = runScoring({ ...v0, greedyAccuracyValidation: 0.25, greedyAccuracyOutOfDomain: 0 });
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], only: ['a', 'b'], run: stale.run, platform: here, log: () => undefined });
    expect(stale.seen[0]?.reasons[0]).toContain(
      '(greedy validation 25.0% against 50.0%, out-of-domain 0.0% against 10.0%): trained here, on This CPU (x64, avx2 fma avx); that run\'s machine is not recorded.',
    );
  });

  it('refuses to resume over runs made from another spec', async () => {
    const exp = await parse(TWO_ROWS);
    await runExperiment({ experiment: exp, outDir: out, seeds: [3], run: fakeRunner().run, log: () => undefined });
    const changed = await parse(TWO_ROWS.replace('intervalFraction: 0.5', 'intervalFraction: 0.75'));
    const error = await runExperiment({ experiment: changed, outDir: out, seeds: [3], run: fakeRunner().run, log: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FailedPreconditionError);
    expect((error as Error).message).toContain('was run with another spec than row b now defines at seed 3');
    expect(planRuns(changed, out, [3]).map((p) => p.runId)).toEqual(['exp-a-s3', 'exp-b-s3']);
  });
});

/** A hand-made completed run: in-domain greedy of v0 and of the final policy, and optional sweeps. */
function result(row: string, seed: number, warm: number, final: number, selections: eventsV1.TemperatureSelected[] = []): RunResult {
  return {
    row,
    seed,
    runId: `exp-${row}-s${seed}`,
    wallSeconds: 100 * seed,
    spec: '',
    iterations: [
      stats(0, { greedyAccuracyInDomain: warm, greedyAccuracyOutOfDomain: warm / 2, greedyAccuracyValidation: warm, passAtK: 0.8, passAtKGap: 0.8 - warm, datasetSize: 48, wallSeconds: 30 }),
      stats(1, { greedyAccuracyInDomain: (warm + final) / 2, temperature: 0.6 + 0.2 * seed, datasetSize: 10 * seed }),
      stats(2, { greedyAccuracyInDomain: final, greedyAccuracyOutOfDomain: final / 2, greedyAccuracyValidation: final, passAtK: 0.7, rewardPassAtK: 0.5, passAtKGap: 0.7 - final, evalTemperature: 1.2 }),
    ],
    selections,
  };
}

const sweep = (iteration: number, points: [number, number][]): eventsV1.TemperatureSelected =>
  eventsV1.TemperatureSelected.fromPartial({
    iteration,
    temperature: 0.8,
    mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K,
    swept: true,
    sweep: { policy: { version: iteration - 1 }, samplesPerPrompt: 8, rewardPassK: 2, validationPrompts: 64, greedyAccuracy: 0.25, rows: points.map(([temperature, rp]) => ({ temperature, passAtK: 0.9, rewardPassAtK: rp, sampleAccuracy: 0.3 })) },
  });

describe('aggregation', () => {
  it('mean and sample standard deviation', () => {
    const s = meanStd([0.3, 0.4, 0.5]);
    expect(s.mean).toBeCloseTo(0.4, 12);
    expect(s.std).toBeCloseTo(0.1, 12);
    expect(meanStd([0.25, undefined])).toEqual({ mean: 0.25, std: null, n: 1 });
    expect(meanStd([])).toEqual({ mean: null, std: null, n: 0 });
  });

  it("a row's final numbers over seeds, the warm-up's, the gain paired by seed, and the curves", async () => {
    const exp = await parse(TWO_ROWS);
    const results = [result('a', 3, 0.2, 0.3), result('a', 4, 0.2, 0.4), result('a', 9, 0.3, 0.5), result('b', 4, 0.1, 0.2)];
    const [warm, a, b] = summarise(exp, results, [3, 4, 9]);
    expect(a).toMatchObject({ row: 'a', kind: 'run', warmup_of: null, seeds: [3, 4, 9], missing_seeds: [], final_iteration: 2, samples_per_prompt: 8, reward_pass_k: 2 });
    expect(a?.id_greedy_mean).toBeCloseTo(0.4, 12);
    expect(a?.id_greedy_std).toBeCloseTo(0.1, 12);
    expect(a?.ood_greedy_mean).toBeCloseTo(0.2, 12);
    expect(a?.ood_greedy_std).toBeCloseTo(0.05, 12);
    expect(a?.warmup_id_greedy_mean).toBeCloseTo(0.7 / 3, 12);
    // gains 0.1, 0.2, 0.2: mean 1/6, std sqrt(((1/15)^2 + 2 (1/30)^2) / 2)
    expect(a?.id_greedy_gain_mean).toBeCloseTo(1 / 6, 12);
    expect(a?.id_greedy_gain_std).toBeCloseTo(Math.sqrt((1 / 225 + 2 / 900) / 2), 12);
    expect(a?.pass_at_k_mean).toBeCloseTo(0.7, 12);
    expect(a?.reward_pass_at_k_std).toBeCloseTo(0, 12);
    expect(a?.wall_seconds_mean).toBeCloseTo((300 + 400 + 900) / 3, 9);
    expect(a?.per_seed.map((s) => [s.seed, s.id_greedy, s.warmup_id_greedy, s.final_temperature])).toEqual([
      [3, 0.3, 0.2, 1.2],
      [4, 0.4, 0.2, 1.2],
      [9, 0.5, 0.3, 1.2],
    ]);
    expect(a?.per_iteration.map((it) => it.iteration)).toEqual([0, 1, 2]);
    expect(a?.per_iteration[1]?.id_greedy_mean).toBeCloseTo((0.25 + 0.3 + 0.4) / 3, 12);
    expect(a?.per_iteration[1]?.temperature_mean).toBeCloseTo((1.2 + 1.4 + 2.4) / 3, 12);
    expect(a?.per_iteration[1]?.dataset_size_mean).toBeCloseTo(160 / 3, 12);
    expect(a?.per_iteration[0]?.temperature_mean).toBeNull();
    // The warm-up row is iteration 0 of its row.
    expect(warm).toMatchObject({ row: 'warm-up', kind: 'warmup', warmup_of: 'a', seeds: [3, 4, 9], final_iteration: 0 });
    expect(warm?.id_greedy_mean).toBeCloseTo(0.7 / 3, 12);
    expect(warm?.per_seed.map((s) => s.wall_seconds)).toEqual([30, 30, 30]);
    expect(summarise(exp, [{ ...result('a', 3, 0.2, 0.3), warmupFrom: 'exp-b-s3' }], [3])[1]?.per_seed.map((s) => s.warmup_from)).toEqual(['exp-b-s3']);
    expect(a?.per_seed.map((s) => s.warmup_from)).toEqual([null, null, null]);
    expect(warm?.per_iteration).toHaveLength(1);
    // One seed: a mean, no spread; the seeds without a run are listed.
    expect(b).toMatchObject({ seeds: [4], missing_seeds: [3, 9], id_greedy_mean: 0.2, id_greedy_std: null });
  });

  it('flattens the sweep tables, one point per temperature', () => {
    const points = sweepPoints([result('a', 3, 0.2, 0.3, [sweep(1, [[0.6, 0.4], [1, 0.5]]), eventsV1.TemperatureSelected.fromPartial({ iteration: 2, temperature: 0.8, swept: false })])]);
    expect(points).toEqual([
      expect.objectContaining({ row: 'a', seed: 3, iteration: 1, policy_version: 0, mode: 'BALANCER_REWARD_PASS_AT_K', chosen_temperature: 0.8, temperature: 0.6, reward_pass_at_k: 0.4, validation_prompts: 64 }),
      expect.objectContaining({ iteration: 1, temperature: 1, reward_pass_at_k: 0.5, pass_at_k: 0.9, sample_accuracy: 0.3 }),
    ]);
  });
});

describe('the report', () => {
  let out: string;
  beforeEach(async () => {
    out = await mkdtemp(join(tmpdir(), 'mstar-report-'));
  });
  afterEach(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('writes summary.json, sweeps.json, table.md and one SVG per figure with every row that ran', async () => {
    const exp = await parse(TWO_ROWS);
    // Results as runs leave them (spec.yaml is what the row defines now, as on resume).
    const { formatRunSpec } = await import('@mstar/runspec');
    const put = async (r: RunResult): Promise<void> => {
      const row = runRow(exp, r.row);
      const dir = runDir(out, r.row, r.seed);
      await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
      await writeResult(dir, { ...r, spec: formatRunSpec(row.specFor(r.seed)) });
    };
    await put(result('a', 3, 0.2, 0.3, [sweep(1, [[0.6, 0.4], [1, 0.5]])]));
    await put(result('a', 4, 0.2, 0.5, [sweep(1, [[0.6, 0.6], [1, 0.7]])]));
    await put({ ...result('b', 3, 0.3, 0.25), warmupFrom: 'exp-a-s3', platform: { arch: 'x64', cpu: 'AMD EPYC', simd: ['avx512f', 'avx2'] } });

    const report = await writeReport(exp, out, [3, 4]);
    expect(report.files).toEqual([
      'summary.json',
      'sweeps.json',
      'table.md',
      'plots/greedy-in-domain.svg',
      'plots/greedy-out-of-domain.svg',
      'plots/pass-at-k.svg',
      'plots/pass-at-k-gap.svg',
      'plots/temperature.svg',
      'plots/dataset-size.svg',
      'plots/reward-pass-by-temperature.svg',
    ]);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>[];
    expect(summary.map((r) => [r['row'], r['seeds']])).toEqual([
      ['warm-up', [3, 4]],
      ['a', [3, 4]],
      ['b', [3]],
    ]);
    expect(summary[1]?.['id_greedy_mean']).toBeCloseTo(0.4, 12);
    expect(summary[1]?.['id_greedy_std']).toBeCloseTo(Math.SQRT2 / 10, 12);
    expect(JSON.parse(await readFile(join(out, 'sweeps.json'), 'utf8'))).toHaveLength(4);

    const table = await readFile(join(out, 'table.md'), 'utf8');
    expect(table).toContain('| a | as tiny.yaml | 2/2 | 40.0 ± 14.1 | 20.0 ± 7.1 | 40.0 ± 14.1 | 70.0 ± 0.0 | 50.0 ± 0.0 | 20.0 ± 0.0 | +20.0 ± 14.1 | 5.8 |');
    // b's own v0 (30%) is not the warm-up row's (a's, 20%): the gain is against its own.
    expect(table).toContain('| b |  | 1/2 | 25.0 | 12.5 | 25.0 | 70.0 | 50.0 | 30.0 | -5.0 | 5.0 |');
    expect(table).toContain('| warm-up |  | 2/2 | 20.0 ± 0.0 |');
    // Per seed, a run that took another run's v0 says whose, and a run that recorded its machine names it.
    expect(table).toContain('| b | 3 | v2 | 25.0 | 12.5 | 25.0 | 70.0 | 50.0 | 1.20 | 300 (v0 of exp-a-s3) | AMD EPYC (x64, avx512f avx2) |');
    expect(table).toContain('| a | 3 | v2 | 30.0 | 15.0 | 30.0 | 70.0 | 50.0 | 1.20 | 300 | - |');
    expect(table).toContain('![greedy-in-domain.svg](plots/greedy-in-domain.svg)');

    for (const file of report.files.filter((f) => f.endsWith('.svg'))) {
      const svg = await readFile(join(out, file), 'utf8');
      expect(svg.startsWith('<svg'), file).toBe(true);
      expect(svg).toContain('</svg>');
      if (file !== 'plots/reward-pass-by-temperature.svg') {
        // The legend names each row that ran; one line (a path) per row.
        expect(svg).toContain('>a</text>');
        expect(svg).toContain('>b</text>');
        expect(svg, file).not.toContain('>warm-up</text>');
      }
    }
    const sweepsSvg = await readFile(join(out, 'plots/reward-pass-by-temperature.svg'), 'utf8');
    expect(sweepsSvg).toContain('for iteration 1');
    expect(sweepsSvg).toContain('Reward-Pass@2 %');

    // Without sweeps the figure is gone, and the table says why.
    await rm(join(out, 'runs', 'a'), { recursive: true });
    const again = await writeReport(exp, out, [3, 4]);
    expect(again.files).not.toContain('plots/reward-pass-by-temperature.svg');
    expect(await readdir(join(out, 'plots'))).not.toContain('reward-pass-by-temperature.svg');
    expect(await readFile(join(out, 'table.md'), 'utf8')).toContain('No run swept temperatures');
  }, 60_000);
});
