import { DEFAULT_COMPACT_AT, generate, type GenerateRequest, type GeneratedSequence, type GenerationStats } from './generate.js';
import type { GenerationRunner } from './runner.js';

export type BenchRequest = Omit<GenerateRequest, 'useKvCache' | 'compactAt' | 'onSequenceDone' | 'signal'>;

export interface BenchVariant {
  /** 'cache compactAt=<share>' (KV cache + prefix sharing) or 'no-cache' (full recomputation). */
  readonly name: string;
  readonly useKvCache: boolean;
  readonly compactAt: number;
  readonly generatedTokens: number;
  /** Best (lowest) wall time over the repeats. */
  readonly seconds: number;
  readonly tokensPerSecond: number;
  readonly decoderRuns: number;
  /** Tokens the decoder processed (rows x sequence length, summed over runs). */
  readonly decoderTokens: number;
}

export interface BenchReport {
  readonly variants: readonly BenchVariant[];
  /** Tokens/s of the cached loop with the default compaction over the no-cache baseline. */
  readonly speedup: number;
  /** Whether every variant produced the same sequences (they must, for one seed). */
  readonly sameTokens: boolean;
}

const VARIANTS = [
  { useKvCache: true, compactAt: DEFAULT_COMPACT_AT },
  { useKvCache: true, compactAt: 0 },
  { useKvCache: true, compactAt: 1 },
  { useKvCache: false, compactAt: 1 },
] as const;

const key = (sequences: readonly (readonly GeneratedSequence[])[]): string =>
  JSON.stringify(sequences.map((s) => s.map((q) => [q.tokens, q.finishReason])));

export interface BenchOptions {
  /** Timed runs per cached variant; the best counts. Default 3. */
  readonly repeats?: number;
  /** Timed runs of the no-cache baseline (slow on big configs). Default: `repeats`. */
  readonly baselineRepeats?: number;
}

/**
 * Generated tokens per second with the KV cache and prefix sharing (compacting finished rows at
 * the default share, at every finish, and never) against full recomputation, on the same request:
 * the best of the timed runs. Each variant first runs the request cut to 2 new tokens, untimed, so
 * JIT and ONNX Runtime's first-run allocations are not billed to whichever variant goes first; the
 * timed runs go round-robin over the variants, so a change in machine load hits them all alike.
 */
export async function benchGenerate(runner: GenerationRunner, request: BenchRequest, options: BenchOptions = {}): Promise<BenchReport> {
  const repeats = options.repeats ?? 3;
  const baselineRepeats = options.baselineRepeats ?? repeats;
  const run = (v: (typeof VARIANTS)[number], maxNewTokens = request.maxNewTokens) =>
    generate(runner, { ...request, maxNewTokens, useKvCache: v.useKvCache, compactAt: v.compactAt });
  for (const v of VARIANTS) await run(v, Math.min(2, request.maxNewTokens));
  const best = VARIANTS.map(() => Infinity);
  const stats: (GenerationStats | undefined)[] = VARIANTS.map(() => undefined);
  const outputs = new Set<string>();
  for (let r = 0; r < Math.max(repeats, baselineRepeats); r++) {
    for (const [i, v] of VARIANTS.entries()) {
      if (r >= (v.useKvCache ? repeats : baselineRepeats)) continue;
      const start = performance.now();
      const result = await run(v);
      best[i] = Math.min(best[i] as number, (performance.now() - start) / 1000);
      outputs.add(key(result.sequences));
      stats[i] = result.stats;
    }
  }
  const variants: BenchVariant[] = VARIANTS.map((v, i) => {
    const { generatedTokens, decoderRuns, decoderTokens } = stats[i] as GenerationStats;
    const seconds = best[i] as number;
    const name = v.useKvCache ? `cache compactAt=${v.compactAt}` : 'no-cache';
    return { name, useKvCache: v.useKvCache, compactAt: v.compactAt, generatedTokens, seconds, tokensPerSecond: generatedTokens / seconds, decoderRuns, decoderTokens };
  });
  const [cached, , , baseline] = variants as [BenchVariant, BenchVariant, BenchVariant, BenchVariant];
  return { variants, speedup: cached.tokensPerSecond / baseline.tokensPerSecond, sameTokens: outputs.size === 1 };
}
