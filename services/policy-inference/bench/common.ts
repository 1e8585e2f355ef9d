/**
 * What the policy-inference benchmarks share: the REFERENCE policy they run (a warm-up checkpoint
 * when one exists, so samples end with `</s>` at realistic lengths; random weights otherwise), the
 * prompts of the built-in benchmark, and progress lines on stderr.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GenerationPrompt } from '@mstar/generation';
import { fsCheckpointIO, initWeights, loadCheckpoint, preprocessImage, REFERENCE_CONFIG, type ModelConfig, type ModelWeights, type TokenizerFiles } from '@mstar/models';
import { itemFromProblem, promptIds, type EvalItem } from '@mstar/recipes';
import { buildWorldTokenizer, createTokenizer, generateSplit, type TextTokenizer } from '@mstar/world';

/** The repository root (bench/ sits three levels below it). */
export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const DEFAULT_CHECKPOINT = resolve(REPO_ROOT, 'runs/warmup/checkpoint');

export interface BenchPolicy {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly tokenizerFiles: TokenizerFiles;
  readonly tokenizer: TextTokenizer;
  /** Where the weights came from, for the report. */
  readonly source: string;
}

/**
 * The policy of `checkpoint` (a `saveCheckpoint` folder); with none given, the warm-up's
 * `runs/warmup/checkpoint` when it exists, else REFERENCE_CONFIG with `initWeights(seed 1)`.
 */
export async function benchPolicy(checkpoint: string | undefined): Promise<BenchPolicy> {
  const dir = checkpoint ?? (existsSync(DEFAULT_CHECKPOINT) ? DEFAULT_CHECKPOINT : undefined);
  if (dir === undefined) {
    const tokenizerFiles = buildWorldTokenizer();
    return {
      config: REFERENCE_CONFIG,
      weights: initWeights(REFERENCE_CONFIG, 'policy', 1),
      tokenizerFiles,
      tokenizer: createTokenizer(tokenizerFiles),
      source: 'REFERENCE_CONFIG, initWeights seed 1 (no checkpoint: samples mostly run to max_new_tokens)',
    };
  }
  const ckpt = await loadCheckpoint(fsCheckpointIO(dir), { kind: 'policy' });
  return { config: ckpt.config, weights: ckpt.weights, tokenizerFiles: ckpt.tokenizer, tokenizer: createTokenizer(ckpt.tokenizer), source: `checkpoint ${dir}` };
}

/** The first `n` problems of the in-domain test split (world seed `worldSeed`). */
export function benchItems(n: number, worldSeed = 1): EvalItem[] {
  return generateSplit('test', { seed: worldSeed, size: n }).map((p) => itemFromProblem(p));
}

/** An image + question prompt exactly as the service prepares it (`<s>` + `<image>\n<question>`). */
export function imagePrompt(item: EvalItem, policy: BenchPolicy, id: string): GenerationPrompt {
  const { config } = policy;
  return {
    id,
    inputIds: promptIds(policy.tokenizer, item.question),
    pixelValues: { type: 'float32', dims: [config.vision.channels, config.vision.imageSize, config.vision.imageSize], data: preprocessImage(item.image, config) },
  };
}

/** The text-only prompt for a language model alone: the same ids without the `<image>` placeholder. */
export function textIds(item: EvalItem, policy: BenchPolicy): number[] {
  return promptIds(policy.tokenizer, item.question).filter((id) => id !== policy.config.tokens.image);
}

export function log(fields: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify(fields)}\n`);
}

export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Splits `items` into consecutive chunks of `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function numberArg(values: Record<string, string | boolean | undefined>, name: string): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${String(values[name])}`);
  return n;
}
