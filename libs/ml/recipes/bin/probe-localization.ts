/**
 * A perception probe: can the policy learn to name the one object in an image? Trains a fresh
 * policy with SFT on "what is there?" -> "# Answer\n\n<colour> <shape or digit>" and reports the
 * accuracy of the colour and of the kind (shape or digit) of greedy answers on held-out images.
 * With --cell N the object always sits in cell N (no search: the answer is in one known image
 * token); without it the object is in a random cell of the 4x4 grid, so the decoder must find the
 * one image token that differs. Run from the root:
 *   npm run probe:localization -- [--examples 3200] [--cell 0] [--lr 0.0005] [--seed 1]
 *   [--vision-pretraining-steps 200] (pretrain the vision tower first, see pretrainVision)
 * Progress goes to stderr; the last stdout line is the JSON.
 */
import { parseArgs } from 'node:util';
import { createRng } from '@mstar/metrics';
import { REFERENCE_CONFIG, initWeights } from '@mstar/models';
import { COLOURS, DIGITS, GRID, SHAPES, buildWorldTokenizer, createTokenizer, renderScene } from '@mstar/world';
import type { WorldObject } from '@mstar/world';
import { evaluate, pretrainVision, sftExamples, warmup } from '../src/index.js';
import type { EvalItem } from '../src/index.js';
import { numberArg } from './args.js';

const { values } = parseArgs({
  options: {
    examples: { type: 'string', default: '3200' },
    cell: { type: 'string' },
    lr: { type: 'string', default: '0.0005' },
    seed: { type: 'string', default: '1' },
    'vision-pretraining-steps': { type: 'string', default: '0' },
  },
});
const seed = numberArg('seed', values.seed, { integer: true });
const examples = numberArg('examples', values.examples, { integer: true, min: 1 });
const lr = numberArg('lr', values.lr, { min: 0 });
const visionSteps = numberArg('vision-pretraining-steps', values['vision-pretraining-steps'], { integer: true, min: 0 });
const fixedCell = values.cell === undefined ? undefined : numberArg('cell', values.cell, { integer: true, min: 0 });
if (fixedCell !== undefined && fixedCell >= GRID * GRID) throw new Error(`--cell must be an integer cell index 0..${GRID * GRID - 1} (row-major), got ${values.cell}`);
const config = REFERENCE_CONFIG;
const tokenizer = createTokenizer(buildWorldTokenizer());
const rng = createRng(seed);

function item(id: string): EvalItem {
  const cell = fixedCell ?? rng.int(GRID * GRID);
  const placed = { row: Math.floor(cell / GRID), col: cell % GRID };
  const colour = rng.pick(COLOURS);
  const object: WorldObject = rng.int(2) === 0 ? { kind: 'digit', colour, digit: rng.pick(DIGITS), ...placed } : { kind: 'shape', colour, shape: rng.pick(SHAPES), ...placed };
  const name = `${colour} ${object.kind === 'digit' ? object.digit : object.shape}`;
  return { id, family: 'name-the-object', question: 'what is there?', image: renderScene({ objects: [object] }, 'plain'), answer: name, response: `# Answer\n\n${name}` };
}

const train = Array.from({ length: examples }, (_, i) => item(`train-${i}`));
const heldOut = Array.from({ length: 200 }, (_, i) => item(`test-${i}`));
const vision = visionSteps > 0 ? await pretrainVision({ config, steps: visionSteps, seed, initialWeights: initWeights(config, 'policy', seed) }) : undefined;
const trained = await warmup({
  config,
  ...(vision !== undefined ? { initialWeights: vision.weights } : {}),
  examples: sftExamples(train, tokenizer, config),
  epochs: 1,
  batchSize: 16,
  lr,
  seed,
  onProgress: (e) => {
    if (e.step % 25 === 0) process.stderr.write(`${JSON.stringify({ step: e.step, of: e.totalSteps, loss: +e.loss.toFixed(4) })}\n`);
  },
});
const result = await evaluate({ policy: { config, weights: trained.weights }, items: heldOut, tokenizer, k: 1, temperature: [], keepSamples: true });
const words = (text: string): string[] => (text.split('\n').pop() ?? '').trim().split(' ');
const share = (part: 0 | 1): number => result.samples!.filter((s) => words(s.greedy!.text)[part] === words(s.answer)[part]).length / heldOut.length;
console.log(
  JSON.stringify({
    command: `npm run probe:localization -- ${process.argv.slice(2).join(' ')}`.trim(),
    placement: fixedCell === undefined ? 'random cell' : `cell ${fixedCell}`,
    visionPretrainingSteps: visionSteps,
    steps: trained.steps,
    lastEpochLoss: trained.lastEpochLoss,
    exact: result.greedyAccuracy,
    colour: share(0),
    kind: share(1),
    chance: { colour: 1 / COLOURS.length, kind: 1 / (SHAPES.length + DIGITS.length) },
  }),
);
