// Tokens/s of KV-cache + prefix-sharing generation against full recomputation.
//   npx tsx --conditions=@mstar/source test/bench-generate.ts [tiny|reference] [repeats] [baselineRepeats]
import { REFERENCE_CONFIG, TINY_CONFIG } from '@mstar/models';
import { benchGenerate } from '../src/index.js';
import { loadTinyModel, textPrompt } from './fixture.js';

const which = process.argv[2] ?? 'tiny';
const config = which === 'reference' ? REFERENCE_CONFIG : TINY_CONFIG;
const repeats = Number(process.argv[3] ?? 3);
const baselineRepeats = Number(process.argv[4] ?? (which === 'reference' ? 1 : repeats));
// Scale 5 gives an untrained model a peaked next-token distribution, so with several EOS ids some
// rows end early and others run to the limit: the mix where dropping finished rows matters.
const model = await loadTinyModel(config, { scale: 5, intraOpThreads: 2 });
const { pad, image, eos } = config.tokens;
// 8 prompts: <bos> <image> question of 10..24 tokens (expanded to 27..41 positions).
const prompts = Array.from({ length: 8 }, (_, i) => ({
  inputIds: [1, image, ...textPrompt(10 + 2 * i, i)],
  pixelValues: { type: 'float32' as const, dims: [1, 3, 32, 32], data: Float32Array.from({ length: 3072 }, (_, j) => Math.sin(j * 0.1 + i)) },
}));
const report = await benchGenerate(
  model.runner,
  { prompts, numSamples: 16, temperature: 1, topP: 0.95, maxNewTokens: 48, seed: 1, eosId: [eos, 5, 6, 7, 8, 9], padId: pad, imageTokenId: image },
  { repeats, baselineRepeats },
);
console.log(JSON.stringify({ config: which, rows: 8 * 16, ...report }, null, 1));
await model.release();
