/**
 * How sound the reasoning of a run's kept samples is: re-checks every step of each iteration
 * dataset (data-curation's datasets/iteration-<i>.jsonl) with the world checker, by family, and
 * how well the recorded PRM score told right reasoning from a lucky answer (keptQuality).
 * Run from the root: npm run kept-quality -- --datasets runs/<out>/artifacts/runs/<run id>/datasets
 * [--pool-size 4096] [--world-seed 1] [--answer-style short|worked] (the run's world). One line per
 * iteration goes to stderr; the last stdout line is the JSON.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSplit } from '@mstar/world';
import { decodeDatasetRecords, keptQuality } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg } from './args.js';

const { values } = parseArgs({
  options: {
    datasets: { type: 'string' },
    'pool-size': { type: 'string', default: '4096' },
    'world-seed': { type: 'string', default: '1' },
    ...ANSWER_STYLE_OPTION,
  },
});
const answers = answerStyleArg(values['answer-style']);
if (values.datasets === undefined) throw new Error('--datasets DIR (a run artifacts datasets folder) is required');
const dir = resolve(process.env.INIT_CWD ?? process.cwd(), values.datasets);
const pool = generateSplit('train', { seed: Number(values['world-seed']), size: Number(values['pool-size']), answers });
const problems = new Map(pool.map((p) => [p.id, p]));
const files = (await readdir(dir)).filter((f) => /^iteration-\d+\.jsonl$/.test(f)).sort((x, y) => Number(x.match(/\d+/)![0]) - Number(y.match(/\d+/)![0]));
if (files.length === 0) throw new Error(`${dir}: no iteration-<i>.jsonl datasets`);
const iterations = [];
for (const file of files) {
  const quality = keptQuality(decodeDatasetRecords(await readFile(join(dir, file)), file), problems);
  const share = quality.kept === 0 ? 0 : quality.allStepsRight / quality.kept;
  const valuesShare = quality.kept === 0 ? 0 : quality.valuesRight / quality.kept;
  const families = Object.entries(quality.byFamily).map(([family, c]) => `${family} ${c.allStepsRight}/${c.valuesRight}/${c.kept}`);
  console.error(
    `${file}: of ${quality.kept} kept samples ${quality.allStepsRight} have every step right (${(100 * share).toFixed(1)}%), ${quality.valuesRight} every value (${(100 * valuesShare).toFixed(1)}%); ` +
      `by family (steps/values/kept) ${families.join(', ')}; PRM AUC ${quality.prmAuc?.toFixed(3) ?? '-'}`,
  );
  iterations.push({ file, ...quality, allStepsRightShare: share, valuesRightShare: valuesShare });
}
console.log(JSON.stringify({ datasets: dir, iterations }));
