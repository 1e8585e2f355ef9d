/**
 * How good a trained PRM is (method section 4): samples K responses per prompt from a policy on a
 * world split, scores every step with the PRM, and reports the step-level AUC against the world
 * checker's ground truth and best-of-K accuracy by PRM vs majority vote vs a random pick.
 * Run from the root: npm run prm-quality -- --policy runs/<run>/checkpoints/policy/v0
 * --prm runs/<run>/checkpoints/prm/v0 [--split validation] [--size N] [--k 16] [--temperature 1.0]
 * [--max-new-tokens 48] (160 for tallied chains) [--aggregation min] [--seed S] [--world-seed S]
 * [--answer-style short|worked]. Progress goes to stderr; the last stdout line is the JSON.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AGGREGATIONS } from '@mstar/metrics';
import type { Aggregation } from '@mstar/metrics';
import { fsCheckpointIO, loadCheckpoint, preprocessImage } from '@mstar/models';
import { createTokenizer, generateSplit } from '@mstar/world';
import { evaluate, itemFromProblem, openPrmScorer, prmQuality, prmResponseIds, promptIds } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg, numberArg } from './args.js';

const { values } = parseArgs({
  options: {
    policy: { type: 'string' },
    prm: { type: 'string' },
    split: { type: 'string', default: 'validation' },
    size: { type: 'string', default: '128' },
    k: { type: 'string', default: '16' },
    temperature: { type: 'string', default: '1.0' },
    'max-new-tokens': { type: 'string', default: '48' },
    aggregation: { type: 'string', default: 'min' },
    seed: { type: 'string', default: '1' },
    'world-seed': { type: 'string', default: '1' },
    ...ANSWER_STYLE_OPTION,
  },
});
const answers = answerStyleArg(values['answer-style']);
if (values.policy === undefined || values.prm === undefined) throw new Error('--policy DIR and --prm DIR (checkpoint folders) are required');
const aggregation = values.aggregation as Aggregation;
if (!AGGREGATIONS.includes(aggregation)) throw new Error(`--aggregation must be one of ${AGGREGATIONS.join(', ')}, got ${values.aggregation}`);
const worldSeed = numberArg('world-seed', values['world-seed'], { integer: true });
const size = numberArg('size', values.size, { integer: true, min: 1 });
const k = numberArg('k', values.k, { integer: true, min: 1 });
const temperature = numberArg('temperature', values.temperature, { min: 0 });
const maxNewTokens = numberArg('max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 });
const seed = numberArg('seed', values.seed, { integer: true });
const cwd = process.env.INIT_CWD ?? process.cwd();
const policy = await loadCheckpoint(fsCheckpointIO(resolve(cwd, values.policy)), { kind: 'policy' });
const prm = await loadCheckpoint(fsCheckpointIO(resolve(cwd, values.prm)), { kind: 'prm' });
const tokenizer = createTokenizer(policy.tokenizer);
const problems = generateSplit(values.split, { seed: worldSeed, size, answers });
const items = problems.map((p) => itemFromProblem(p));

const sampled = await evaluate({
  policy: { config: policy.config, weights: policy.weights },
  items,
  tokenizer,
  k,
  temperature,
  maxNewTokens,
  seed,
  greedy: false,
  keepSamples: true,
  onProgress: (e) => process.stderr.write(`${JSON.stringify({ phase: 'sample', done: e.done, of: e.total, etaS: Math.round(e.etaMs / 1000) })}\n`),
});
const scorer = await openPrmScorer({ config: prm.config, weights: prm.weights, separatorId: createTokenizer(prm.tokenizer).stepSeparatorId });
try {
  const scored = [];
  for (const [i, item] of items.entries()) {
    const responses = sampled.samples![i]!.sampled[0]!.responses.map((r) => r.text);
    const pixels = preprocessImage(item.image, prm.config);
    const prompt = promptIds(tokenizer, item.question);
    const rows = responses.map((text) => ({ prompt, response: prmResponseIds(tokenizer, text), pixels }));
    const withSteps = rows.filter((r) => r.response.length > 0);
    const scores = withSteps.length > 0 ? await scorer.scoreSteps(withSteps) : [];
    let next = 0;
    scored.push({ problem: problems[i]!, responses, stepScores: rows.map((r) => (r.response.length > 0 ? scores[next++]! : [])) });
    if ((i + 1) % 32 === 0) process.stderr.write(`${JSON.stringify({ phase: 'score', done: i + 1, of: items.length })}\n`);
  }
  const quality = prmQuality(scored, aggregation);
  console.log(JSON.stringify({ policy: values.policy, prm: values.prm, split: values.split, temperature, seed, ...quality }));
} finally {
  await scorer.close();
}
