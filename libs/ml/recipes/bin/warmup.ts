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
import { ANSWER_STYLE_OPTION, answerStyleArg } from './args.js';
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
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${String(values[name])}`);
  return n;
};
const preset = values.config === 'tiny' ? TINY_CONFIG : REFERENCE_CONFIG;
const hidden = values['text-hidden'] === undefined ? preset.text.hiddenSize : num('text-hidden');
const config: ModelConfig = {
  ...preset,
  text: {
    ...preset.text,
    hiddenSize: hidden,
    layers: values['text-layers'] === undefined ? preset.text.layers : num('text-layers'),
    intermediateSize: Math.round((preset.text.intermediateSize * hidden) / preset.text.hiddenSize),
  },
};
validateConfig(config);
const seed = num('seed');
const worldSeed = num('world-seed');
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
const train = problems('train', num('examples')).map((p) => itemFromProblem(p, itemOptions));
const validation = problems('validation', num('validation-size')).map((p) => itemFromProblem(p, itemOptions));

const t0 = performance.now();
const visionSteps = num('vision-pretraining-steps');
if (!(Number.isInteger(visionSteps) && visionSteps >= 0)) throw new Error(`--vision-pretraining-steps must be an integer >= 0, got ${visionSteps}`);
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
  epochs: num('epochs'),
  batchSize: num('batch'),
  lr: num('lr'),
  schedule: values.schedule === 'constant' ? 'constant' : 'cosine',
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
  epochs: num('epochs'),
  batch: num('batch'),
  lr: num('lr'),
  schedule: values.schedule,
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

const evalOptions = { k: num('k'), temperature: num('temperature'), maxNewTokens: num('max-new-tokens'), seed };
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
  const test = problems('test', num('test-size')).map((p) => itemFromProblem(p, itemOptions));
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
