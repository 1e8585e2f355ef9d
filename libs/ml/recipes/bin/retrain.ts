/**
 * How much of one self-evolving iteration's change in greedy accuracy comes from the order of its
 * batches: trains the policy that sampled an iteration's dataset (v(i-1), with its optimizer state)
 * on that dataset as the trainer does, once per data-order seed, and measures each result's greedy
 * accuracy next to the start's: on the in-domain test split to reproduce a run's numbers, on a
 * validation split (the default, 500 prompts: the run's 128 and more) to compare training settings
 * without tuning on the test set.
 * Run from the root: npm run retrain -- --checkpoint runs/<out>/artifacts/runs/<run id>/checkpoints/policy/v0
 * --dataset runs/<out>/artifacts/runs/<run id>/datasets/iteration-1.jsonl [--orders 1,2,3]
 * (or, instead of --dataset, --gold-prompts FROM-TO [--cot plain|tally]: the gold chains of those pool prompts)
 * [--run-seed S --iteration I] (adds the run's own order, deriveSeed(S, 'train', I))
 * [--epochs 2] [--batch-size 16] [--fresh-lr X] (a fresh AdamW at constant lr X instead of the saved one)
 * [--pool-size 4096] [--world-seed 1] [--answer-style short|worked] [--split validation|test] [--size 500] [--max-new-tokens 256]
 * Progress lines go to stderr; the last stdout line is the JSON.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fsCheckpointIO, loadCheckpoint, type ModelWeights } from '@mstar/models';
import { deriveSeed } from '@mstar/metrics';
import { COT_STYLES, createTokenizer, generateSplit, isCotStyle } from '@mstar/world';
import { decodeDatasetRecords, evaluate, itemFromProblem, retrainSpread, sftExamples } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg, numberArg, numberListArg } from './args.js';

const { values } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    dataset: { type: 'string' },
    'gold-prompts': { type: 'string' },
    cot: { type: 'string' },
    orders: { type: 'string', default: '1,2,3' },
    'run-seed': { type: 'string' },
    iteration: { type: 'string' },
    epochs: { type: 'string', default: '2' },
    'batch-size': { type: 'string', default: '16' },
    'fresh-lr': { type: 'string' },
    'pool-size': { type: 'string', default: '4096' },
    'world-seed': { type: 'string', default: '1' },
    split: { type: 'string', default: 'validation' },
    size: { type: 'string', default: '500' },
    'max-new-tokens': { type: 'string', default: '256' },
    ...ANSWER_STYLE_OPTION,
  },
});
if (values.checkpoint === undefined) throw new Error('--checkpoint DIR (policy v(i-1) of a run) is required');
if ((values.dataset === undefined) === (values['gold-prompts'] === undefined)) {
  throw new Error('give either --dataset FILE (the run datasets folder iteration-<i>.jsonl) or --gold-prompts FROM-TO (pool prompts whose gold chains to train on)');
}
if (values.cot !== undefined && values['gold-prompts'] === undefined) throw new Error('--cot picks the chain style of --gold-prompts; a --dataset brings its own responses');
const cotArg = values.cot ?? 'plain';
if (!isCotStyle(cotArg)) throw new Error(`--cot must be one of ${COT_STYLES.join(', ')}, got ${cotArg}`);
// Typed CotStyle for the function declarations below, which the narrowing of cotArg does not reach.
const cot = cotArg;
if ((values['run-seed'] === undefined) !== (values.iteration === undefined)) throw new Error('--run-seed and --iteration go together');
if (values.split !== 'validation' && values.split !== 'test') throw new Error(`--split must be validation or test (in-domain), got ${values.split}`);
const orders = numberListArg('orders', values.orders, { integer: true }).map((seed) => ({ order: String(seed), seed }));
if (values['run-seed'] !== undefined && values.iteration !== undefined) {
  const runSeed = numberArg('run-seed', values['run-seed'], { integer: true });
  const iteration = numberArg('iteration', values.iteration, { integer: true, min: 1 });
  // The trainer's data-order seed for iteration i (services/trainer stages.ts trainIteration).
  orders.unshift({ order: 'run', seed: deriveSeed(runSeed, 'train', iteration) });
}
const epochs = numberArg('epochs', values.epochs, { integer: true, min: 1 });
const batchSize = numberArg('batch-size', values['batch-size'], { integer: true, min: 1 });
const freshLr = values['fresh-lr'] === undefined ? undefined : numberArg('fresh-lr', values['fresh-lr'], { min: 0 });
const poolSize = numberArg('pool-size', values['pool-size'], { integer: true, min: 1 });
const worldSeed = numberArg('world-seed', values['world-seed'], { integer: true });
const size = numberArg('size', values.size, { integer: true, min: 1 });
const maxNewTokens = numberArg('max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 });
/** `--gold-prompts FROM-TO`: pool indices, both included. */
function goldRangeArg(value: string): [number, number] {
  const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value);
  const [from, to] = match === null ? [NaN, NaN] : [Number(match[1]), Number(match[2])];
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to && to < poolSize)) {
    throw new Error(`--gold-prompts takes FROM-TO, pool indices with FROM <= TO < --pool-size (${poolSize}), got ${value}`);
  }
  return [from, to];
}
const goldRange = values['gold-prompts'] === undefined ? undefined : goldRangeArg(values['gold-prompts']);
const answers = answerStyleArg(values['answer-style']);
const cwd = process.env.INIT_CWD ?? process.cwd();

const checkpoint = await loadCheckpoint(fsCheckpointIO(resolve(cwd, values.checkpoint)), { kind: 'policy' });
const tokenizer = createTokenizer(checkpoint.tokenizer);
const pool = generateSplit('train', { seed: worldSeed, size: poolSize, answers });
/** What to train on: a run's kept responses, or the gold chains of a range of pool prompts (what a loop that kept the gold chain of every prompt it sampled would train on). */
async function trainingItems() {
  if (goldRange !== undefined) return pool.slice(goldRange[0], goldRange[1] + 1).map((problem) => itemFromProblem(problem, { cot }));
  const byId = new Map(pool.map((p) => [p.id, p]));
  const records = decodeDatasetRecords(await readFile(resolve(cwd, values.dataset!)), values.dataset);
  return records.map((record, i) => {
    const problem = byId.get(record.promptId);
    if (problem === undefined) throw new Error(`${values.dataset}:${i + 1}: prompt_id ${record.promptId} is not in the pool (--pool-size, --world-seed)`);
    return { ...itemFromProblem(problem), response: record.response };
  });
}
const items = await trainingItems();
const measured = generateSplit(values.split, { seed: worldSeed, size, answers }).map((p) => itemFromProblem(p));

/** Greedy accuracy (%) of `weights` on the measured split. */
async function greedy(weights: ModelWeights): Promise<number> {
  const result = await evaluate({ policy: { config: checkpoint.config, weights }, items: measured, tokenizer, temperature: [], maxNewTokens });
  return 100 * result.greedyAccuracy!;
}

console.error(`${items.length} examples${goldRange === undefined ? '' : ` (gold chains of pool prompts ${goldRange[0]}-${goldRange[1]})`}, ${epochs} epochs at batch ${batchSize}, greedy on ${values.split} (${measured.length} prompts)`);
const spread = await retrainSpread({
  config: checkpoint.config,
  weights: checkpoint.weights,
  ...(checkpoint.optimizerState !== undefined ? { optimizerState: checkpoint.optimizerState } : {}),
  ...(freshLr !== undefined ? { freshLr } : {}),
  examples: sftExamples(items, tokenizer, checkpoint.config),
  epochs,
  batchSize,
  orders,
  measure: greedy,
  onOrder: (r) =>
    console.error(
      `order ${r.order}: ${r.steps} steps (last lr ${r.lastLr.toExponential(2)}, first/last-epoch loss ${r.firstLoss.toFixed(4)}/${r.lastEpochLoss.toFixed(4)}, ` +
        `weights moved ${(100 * r.relativeWeightChange).toFixed(3)}%) -> ${r.accuracy.toFixed(1)}% (${r.change >= 0 ? '+' : ''}${r.change.toFixed(1)})`,
    ),
});
console.log(JSON.stringify({ checkpoint: values.checkpoint, dataset: values.dataset ?? null, goldPrompts: values['gold-prompts'] ?? null, ...(goldRange !== undefined ? { cot } : {}), examples: items.length, freshLr: freshLr ?? null, split: values.split, size: measured.length, ...spread }));
