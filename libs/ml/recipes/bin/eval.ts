/**
 * Evaluates a saved policy checkpoint on a world split (greedy accuracy, Pass@K at one or more
 * temperatures). Run from the root: npm run eval -- --checkpoint runs/warmup/checkpoint [--split validation]
 * [--size N] [--k 16] [--temperature 1.0,0.7] [--seed S] [--world-seed S] [--answer-style short|worked] [--blank-images]
 * Progress lines go to stderr; the last stdout line is the results JSON.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fsCheckpointIO, loadCheckpoint } from '@mstar/models';
import { createTokenizer, generateSplit } from '@mstar/world';
import { evaluate, itemFromProblem } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg, numberArg, numberListArg } from './args.js';

const { values } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    split: { type: 'string', default: 'validation' },
    size: { type: 'string' },
    k: { type: 'string', default: '16' },
    temperature: { type: 'string', default: '1.0' },
    'max-new-tokens': { type: 'string', default: '48' },
    seed: { type: 'string', default: '1' },
    'world-seed': { type: 'string', default: '1' },
    ...ANSWER_STYLE_OPTION,
    'blank-images': { type: 'boolean', default: false },
  },
});
if (values.checkpoint === undefined) throw new Error('--checkpoint DIR is required');
const answers = answerStyleArg(values['answer-style']);
const worldSeed = numberArg('world-seed', values['world-seed'], { integer: true });
const size = values.size === undefined ? undefined : numberArg('size', values.size, { integer: true, min: 1 });
const k = numberArg('k', values.k, { integer: true, min: 1 });
const temperature = numberListArg('temperature', values.temperature, { min: 0 });
const maxNewTokens = numberArg('max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 });
const seed = numberArg('seed', values.seed, { integer: true });
const cwd = process.env.INIT_CWD ?? process.cwd();
const checkpoint = await loadCheckpoint(fsCheckpointIO(resolve(cwd, values.checkpoint)), { kind: 'policy' });
const tokenizer = createTokenizer(checkpoint.tokenizer);
const items = generateSplit(values.split, { seed: worldSeed, answers, ...(size !== undefined ? { size } : {}) }).map((p) =>
  itemFromProblem(p, { blankImages: values['blank-images'] }),
);
const result = await evaluate({
  policy: { config: checkpoint.config, weights: checkpoint.weights },
  items,
  tokenizer,
  k,
  temperature,
  maxNewTokens,
  seed,
  onProgress: (e) => {
    process.stderr.write(`${JSON.stringify({ pass: e.phase, temperature: e.temperature, done: e.done, of: e.total, tokensPerSecond: Math.round(e.generatedTokens / (e.elapsedMs / 1000)), etaS: Math.round(e.etaMs / 1000) })}\n`);
  },
});
console.log(JSON.stringify({ checkpoint: values.checkpoint, split: values.split, ...result }));
