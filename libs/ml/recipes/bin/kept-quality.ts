/**
 * How sound the reasoning of a run's kept samples is: re-checks every step of each iteration
 * dataset (data-curation's datasets/iteration-<i>.jsonl) with the world checker, by family, and
 * how well the recorded PRM score told right reasoning from a lucky answer (keptQuality).
 * Run from the root: npm run kept-quality -- --datasets runs/<out>/artifacts/runs/<run id>/datasets
 * [--pool-size 4096] [--world-seed 1] [--answer-style short|worked] (the run's world)
 * [--checkpoints runs/<out>/artifacts/runs/<run id>/checkpoints/policy [--max-new-tokens 256]]: with
 * the run's policy checkpoints, also how many kept prompts the policy that sampled them (v(i-1) for
 * iteration i) already answers greedily, so how many teach it something new. One line per iteration
 * goes to stderr; the last stdout line is the JSON.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CHECKPOINT_FILES, fsCheckpointIO, loadCheckpoint } from '@mstar/models';
import { createTokenizer, generateSplit, type Problem } from '@mstar/world';
import { decodeDatasetRecords, evaluate, itemFromProblem, keptQuality } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg, numberArg } from './args.js';

const { values } = parseArgs({
  options: {
    datasets: { type: 'string' },
    'pool-size': { type: 'string', default: '4096' },
    'world-seed': { type: 'string', default: '1' },
    checkpoints: { type: 'string' },
    'max-new-tokens': { type: 'string', default: '256' },
    ...ANSWER_STYLE_OPTION,
  },
});
const answers = answerStyleArg(values['answer-style']);
if (values.datasets === undefined) throw new Error('--datasets DIR (a run artifacts datasets folder) is required');
const worldSeed = numberArg('world-seed', values['world-seed'], { integer: true });
const poolSize = numberArg('pool-size', values['pool-size'], { integer: true, min: 1 });
const maxNewTokens = numberArg('max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 });
const cwd = process.env.INIT_CWD ?? process.cwd();
const dir = resolve(cwd, values.datasets);
const pool = generateSplit('train', { seed: worldSeed, size: poolSize, answers });
const problems = new Map(pool.map((p) => [p.id, p]));
const files = (await readdir(dir)).filter((f) => /^iteration-\d+\.jsonl$/.test(f)).sort((x, y) => Number(x.match(/\d+/)![0]) - Number(y.match(/\d+/)![0]));
if (files.length === 0) throw new Error(`${dir}: no iteration-<i>.jsonl datasets`);

/** How many of `prompts` policy `version` of the run answers right at temperature 0; undefined when its checkpoint was pruned. */
async function greedyRight(version: number, prompts: readonly Problem[]): Promise<number | undefined> {
  const io = fsCheckpointIO(join(resolve(cwd, values.checkpoints!), `v${version}`));
  if (!(await io.exists(CHECKPOINT_FILES.weights))) return undefined;
  const checkpoint = await loadCheckpoint(io, { kind: 'policy' });
  const result = await evaluate({
    policy: { config: checkpoint.config, weights: checkpoint.weights },
    items: prompts.map((p) => itemFromProblem(p)),
    tokenizer: createTokenizer(checkpoint.tokenizer),
    temperature: [], // the greedy pass only
    maxNewTokens,
    keepSamples: true,
  });
  return result.samples!.filter((s) => s.greedy?.correct === true).length;
}

const iterations = [];
for (const file of files) {
  const records = decodeDatasetRecords(await readFile(join(dir, file)), file);
  const quality = keptQuality(records, problems);
  const iteration = Number(file.match(/\d+/)![0]);
  const greedy = values.checkpoints === undefined ? undefined : await greedyRight(iteration - 1, [...new Set(records.map((r) => r.promptId))].map((id) => problems.get(id)!));
  const share = quality.kept === 0 ? 0 : quality.allStepsRight / quality.kept;
  const valuesShare = quality.kept === 0 ? 0 : quality.valuesRight / quality.kept;
  const families = Object.entries(quality.byFamily).map(([family, c]) => `${family} ${c.allStepsRight}/${c.valuesRight}/${c.kept}`);
  console.error(
    `${file}: of ${quality.kept} kept samples ${quality.allStepsRight} have every step right (${(100 * share).toFixed(1)}%), ${quality.valuesRight} every value (${(100 * valuesShare).toFixed(1)}%); ` +
      `by family (steps/values/kept) ${families.join(', ')}; PRM AUC ${quality.prmAuc?.toFixed(3) ?? '-'}; ` +
      `${quality.prompts} prompts, ${quality.distinct} distinct responses` +
      (quality.hinted.kept === 0 ? '' : `; ${quality.hinted.kept} drawn with the answer as a hint, ${quality.hinted.allStepsRight} with every step right, ${quality.hinted.valuesRight} every value`) +
      (values.checkpoints === undefined ? '' : `; policy v${iteration - 1} already answers ${greedy ?? '- (checkpoint pruned)'} of the ${quality.prompts} prompts greedily`),
  );
  iterations.push({ file, ...quality, allStepsRightShare: share, valuesRightShare: valuesShare, ...(greedy === undefined ? {} : { promptsGreedyRight: greedy }) });
}
console.log(JSON.stringify({ datasets: dir, iterations }));
