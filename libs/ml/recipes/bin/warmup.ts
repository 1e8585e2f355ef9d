/**
 * Warm-up (method stage 1) on the built-in benchmark: generates the world splits, trains the policy
 * with SFT on the gold CoT of the first --examples train problems, saves the checkpoint and
 * evaluates it (greedy, Pass@K at T) on validation and the in-domain test split.
 * Run from the root: npm run warmup -- [--examples N] [--seed S] [--out DIR] [--blank-images]
 * [--families count,compare] (train and evaluate on those question families only)
 * [--vision-pretraining-steps 200] (pretrain the vision tower first, see pretrainVision)
 * [--text-hidden 512] [--text-layers 12] (a wider or deeper language model than the preset's;
 * the SwiGLU size scales with the width) [--cot tally] (gold chains that tally the scene before each
 * count, see goldCot; in-domain answers run to 110 tokens: pass --max-new-tokens 160)
 * [--answer-style worked] (answers that give every count the chain reads first, see withAnswerStyle) ...
 * Progress lines go to stderr; the last stdout line is the results JSON.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REFERENCE_CONFIG, TINY_CONFIG, fsCheckpointIO, initWeights, paramCount, saveCheckpoint, validateConfig } from '@mstar/models';
import type { ModelConfig } from '@mstar/models';
import { COT_STYLES, IN_DOMAIN_FAMILIES, buildWorldTokenizer, createTokenizer, generateSplit, isCotStyle } from '@mstar/world';
import type { Problem, SplitName } from '@mstar/world';
import { evaluate, itemFromProblem, pretrainVision, sftExamples, warmup } from '../src/index.js';
import { ANSWER_STYLE_OPTION, answerStyleArg, numberArg } from './args.js';
import type { EvalProgress, EvaluationResult } from '../src/index.js';

const { values } = parseArgs({
  options: {
    examples: { type: 'string', default: '2400' },
    epochs: { type: 'string', default: '2' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string', default: '0.0005' },
    schedule: { type: 'string', default: 'cosine' },
    seed: { type: 'string', default: '1' },
    'world-seed': { type: 'string', default: '1' },
    config: { type: 'string', default: 'reference' },
    out: { type: 'string', default: 'runs/warmup' },
    'blank-images': { type: 'boolean', default: false },
    k: { type: 'string', default: '16' },
    temperature: { type: 'string', default: '1.0' },
    'max-new-tokens': { type: 'string', default: '48' },
    'validation-size': { type: 'string', default: '250' },
    'test-size': { type: 'string', default: '1000' },
    'skip-test': { type: 'boolean', default: false },
    families: { type: 'string' },
    'vision-pretraining-steps': { type: 'string', default: '0' },
    'text-hidden': { type: 'string' },
    'text-layers': { type: 'string' },
    cot: { type: 'string', default: 'plain' },
    ...ANSWER_STYLE_OPTION,
  },
});
const seed = numberArg('seed', values.seed, { integer: true });
const worldSeed = numberArg('world-seed', values['world-seed'], { integer: true });
const examples = numberArg('examples', values.examples, { integer: true, min: 1 });
const epochs = numberArg('epochs', values.epochs, { integer: true, min: 1 });
const batch = numberArg('batch', values.batch, { integer: true, min: 1 });
const lr = numberArg('lr', values.lr, { min: 0 });
const validationSize = numberArg('validation-size', values['validation-size'], { integer: true, min: 1 });
const testSize = numberArg('test-size', values['test-size'], { integer: true, min: 1 });
const visionSteps = numberArg('vision-pretraining-steps', values['vision-pretraining-steps'], { integer: true, min: 0 });
const evalOptions = {
  k: numberArg('k', values.k, { integer: true, min: 1 }),
  temperature: numberArg('temperature', values.temperature, { min: 0 }),
  maxNewTokens: numberArg('max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 }),
  seed,
};
// A misspelt preset or schedule would otherwise train the default one and record the misspelling.
if (values.config !== 'reference' && values.config !== 'tiny') throw new Error(`--config must be reference or tiny, got ${values.config}`);
const schedule = values.schedule;
if (schedule !== 'cosine' && schedule !== 'constant') throw new Error(`--schedule must be cosine or constant, got ${schedule}`);
const preset = values.config === 'tiny' ? TINY_CONFIG : REFERENCE_CONFIG;
const hidden = values['text-hidden'] === undefined ? preset.text.hiddenSize : numberArg('text-hidden', values['text-hidden'], { integer: true, min: 1 });
const config: ModelConfig = {
  ...preset,
  text: {
    ...preset.text,
    hiddenSize: hidden,
    layers: values['text-layers'] === undefined ? preset.text.layers : numberArg('text-layers', values['text-layers'], { integer: true, min: 1 }),
    intermediateSize: Math.round((preset.text.intermediateSize * hidden) / preset.text.hiddenSize),
  },
};
validateConfig(config);
const blankImages = values['blank-images'];
const out = resolve(process.env.INIT_CWD ?? process.cwd(), values.out);
const log = (fields: Record<string, unknown>): void => {
  process.stderr.write(`${JSON.stringify(fields)}\n`);
};

const tokenizerFiles = buildWorldTokenizer();
const tokenizer = createTokenizer(tokenizerFiles);
const cot = values.cot;
if (!isCotStyle(cot)) throw new Error(`--cot must be one of ${COT_STYLES.join(', ')}, got ${cot}`);
const itemOptions = { blankImages, cot };
const answers = answerStyleArg(values['answer-style']);
const families = values.families === undefined ? undefined : new Set(values.families.split(','));
for (const family of families ?? []) {
  if (!(IN_DOMAIN_FAMILIES as readonly string[]).includes(family)) throw new Error(`--families: ${family} is not an in-domain family (${IN_DOMAIN_FAMILIES.join(', ')})`);
}
/** The first `size` problems of a split, of the chosen families only (the split is generated long enough to hold them). */
const problems = (split: SplitName, size: number): Problem[] => {
  if (families === undefined) return generateSplit(split, { seed: worldSeed, size, answers });
  for (let n = size * 4; ; n *= 2) {
    const chosen = generateSplit(split, { seed: worldSeed, size: n, answers }).filter((p) => families.has(p.family));
    if (chosen.length >= size) return chosen.slice(0, size);
  }
};
const train = problems('train', examples).map((p) => itemFromProblem(p, itemOptions));
const validation = problems('validation', validationSize).map((p) => itemFromProblem(p, itemOptions));

const t0 = performance.now();
const vision =
  visionSteps > 0
    ? await pretrainVision({
        config,
        steps: visionSteps,
        seed,
        initialWeights: initWeights(config, 'policy', seed),
        onProgress: (e) => {
          if (e.step % 25 === 0 || e.step === e.totalSteps) log({ phase: 'vision-pretraining', step: e.step, of: e.totalSteps, loss: +e.loss.toFixed(4) });
        },
      })
    : undefined;
const trained = await warmup({
  config,
  ...(vision !== undefined ? { initialWeights: vision.weights } : {}),
  examples: sftExamples(train, tokenizer, config),
  epochs,
  batchSize: batch,
  lr,
  schedule,
  seed,
  onProgress: (e) => {
    if (e.step % 10 === 0 || e.step === e.totalSteps) {
      log({ phase: 'train', step: e.step, of: e.totalSteps, epoch: e.epoch, loss: +e.loss.toFixed(4), lr: +e.lr.toExponential(3), tokensPerSecond: Math.round(e.tokensPerSecond), etaS: Math.round(e.etaMs / 1000) });
    }
  },
});
const trainSeconds = (performance.now() - t0) / 1000;
log({ phase: 'trained', visionPretrainingSteps: visionSteps, steps: trained.steps, firstLoss: trained.firstLoss, lastEpochLoss: trained.lastEpochLoss, seconds: trainSeconds });

await mkdir(out, { recursive: true });
const settings = {
  config: values.config,
  textHidden: config.text.hiddenSize,
  textLayers: config.text.layers,
  parameters: paramCount(config, 'policy'),
  examples: train.length,
  epochs,
  batch,
  lr,
  schedule,
  seed,
  worldSeed,
  blankImages,
  cot,
  answers,
  visionPretrainingSteps: visionSteps,
  ...(families !== undefined ? { families: [...families] } : {}),
};
await saveCheckpoint(fsCheckpointIO(join(out, 'checkpoint')), {
  kind: 'policy',
  config,
  weights: trained.weights,
  tokenizer: tokenizerFiles,
  optimizerState: trained.optimizerState,
  metadata: { recipe: 'warmup', settings: JSON.stringify(settings) },
});

const progress = (split: string) => (e: EvalProgress) => {
  log({ phase: `eval-${split}`, pass: e.phase, done: e.done, of: e.total, tokensPerSecond: Math.round(e.generatedTokens / (e.elapsedMs / 1000)), etaS: Math.round(e.etaMs / 1000) });
};
const policy = { config, weights: trained.weights };
const summary = (r: EvaluationResult) => ({
  n: r.n,
  greedyAccuracy: r.greedyAccuracy,
  passAtK: r.passAtK,
  k: r.k,
  temperature: r.temperature,
  sampleAccuracy: r.temperatures[0]?.sampleAccuracy,
  perFamily: r.perFamily,
  generation: { greedy: r.greedyCost, sampled: r.temperatures[0]?.cost },
});
const validationResult = await evaluate({ policy, items: validation, tokenizer, ...evalOptions, onProgress: progress('validation') });
log({ phase: 'validation', greedyAccuracy: validationResult.greedyAccuracy, passAtK: validationResult.passAtK });
let testResult: EvaluationResult | undefined;
if (!values['skip-test']) {
  const test = problems('test', testSize).map((p) => itemFromProblem(p, itemOptions));
  testResult = await evaluate({ policy, items: test, tokenizer, ...evalOptions, onProgress: progress('test') });
}
const results = {
  command: `npm run warmup -- ${process.argv.slice(2).join(' ')}`.trim(),
  settings,
  training: { steps: trained.steps, seconds: trainSeconds, firstLoss: trained.firstLoss, lastEpochLoss: trained.lastEpochLoss, tokensPerSecond: trained.tokensPerSecond },
  validation: summary(validationResult),
  ...(testResult !== undefined ? { test: summary(testResult) } : {}),
  checkpoint: join(out, 'checkpoint'),
};
await writeFile(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(results));
