import { InvalidArgumentError } from '@mstar/errors';
import { createRng, deriveSeed, type Rng } from '@mstar/metrics';
import type { Feeds, Outputs, PlainTensor } from '@mstar/runtime';
import { GenerationCancelledError } from './errors.js';
import type { LogitsProcessor } from './logits.js';
import { embedPrompts, type EmbeddedPrompt, type GenerationPrompt } from './prompts.js';
import type { GenerationRunner } from './runner.js';
import { sampleWith, samplingProcessors } from './sampler.js';
import {
  checkStop,
  contextLimitCriterion,
  eosCriterion,
  maxNewTokensCriterion,
  type FinishReason,
  type StoppingCriterion,
} from './stopping.js';
import { floatOutput, int64Tensor, selectRows } from './tensors.js';

export interface GenerateRequest {
  readonly prompts: readonly GenerationPrompt[];
  /** Samples per prompt (K); default 1. */
  readonly numSamples?: number;
  /** 0 = greedy. */
  readonly temperature: number;
  /** Nucleus mass in (0, 1]; default 1. */
  readonly topP?: number;
  /** Keep the k most likely tokens before top-p; default 0 (off). */
  readonly topK?: number;
  readonly maxNewTokens: number;
  /** Run seed; each sequence draws from createRng(deriveSeed(seed, promptId, sampleIndex)). Default 0. */
  readonly seed?: number | string;
  /** End-of-sequence id(s); the EOS token ends a sequence and is not part of its tokens. */
  readonly eosId: number | readonly number[];
  /** Token id used to pad prompts in the embedding run and to feed finished rows kept in the batch. */
  readonly padId: number;
  /** The placeholder token an image's features replace (needed for prompts with pixelValues). */
  readonly imageTokenId?: number;
  /** Model context: a sequence stops when prompt + generated tokens reach it. */
  readonly maxContext?: number;
  /** false: re-run the whole sequence every step, with no cache and no prefix sharing (the baseline). Default true. */
  readonly useKvCache?: boolean;
  /**
   * Cached mode: once finished rows make up at least this share of the batch, drop them (one copy
   * of the KV cache's live rows) so later steps run a smaller batch. 0 drops at every finish; 1
   * never drops. Default 0.25 (see the README for the measurements behind it).
   */
  readonly compactAt?: number;
  /** Called as soon as a sequence finishes, before the rest of the batch. */
  readonly onSequenceDone?: (sequence: GeneratedSequence) => void;
  /** Checked before every graph run; when it fires, generate rejects with GenerationCancelledError. */
  readonly signal?: AbortSignal;
}

export interface GeneratedSequence {
  readonly promptIndex: number;
  readonly sampleIndex: number;
  /** Generated ids, without the EOS token. */
  readonly tokens: readonly number[];
  readonly finishReason: FinishReason;
}

export interface GenerationStats {
  decoderRuns: number;
  embedRuns: number;
  visionRuns: number;
  /** Tokens sampled, EOS included. */
  generatedTokens: number;
  /** Sum over decoder runs of batch rows x sequence length: the tokens the decoder processed. */
  decoderTokens: number;
  /** Largest decoder batch (rows). */
  maxBatch: number;
}

export interface GenerationResult {
  /** sequences[promptIndex][sampleIndex]. */
  readonly sequences: readonly (readonly GeneratedSequence[])[];
  readonly stats: GenerationStats;
}

interface Row {
  readonly promptIndex: number;
  readonly sampleIndex: number;
  readonly prompt: EmbeddedPrompt;
  readonly rng: Rng;
  readonly tokens: number[];
  done: boolean;
}

/** Everything one request needs, checked once. */
interface Plan {
  readonly runner: GenerationRunner;
  readonly request: GenerateRequest;
  readonly greedy: boolean;
  readonly processors: readonly LogitsProcessor[];
  readonly criteria: readonly StoppingCriterion[];
  readonly stats: GenerationStats;
  readonly sequences: GeneratedSequence[][];
}

export const DEFAULT_COMPACT_AT = 0.25;

function checkRequest(request: GenerateRequest): { criteria: StoppingCriterion[]; numSamples: number } {
  if (request.prompts.length === 0) throw new InvalidArgumentError('prompts is empty', { field: 'prompts' });
  const numSamples = request.numSamples ?? 1;
  if (!Number.isInteger(numSamples) || numSamples < 1) throw new InvalidArgumentError(`numSamples must be an integer >= 1, got ${numSamples}`, { field: 'numSamples' });
  const compactAt = request.compactAt ?? DEFAULT_COMPACT_AT;
  if (!(compactAt >= 0 && compactAt <= 1)) throw new InvalidArgumentError(`compactAt must be in [0, 1], got ${compactAt}`, { field: 'compactAt' });
  if (!Number.isInteger(request.padId) || request.padId < 0) throw new InvalidArgumentError(`padId must be a token id, got ${request.padId}`, { field: 'padId' });
  const criteria = [eosCriterion(request.eosId), maxNewTokensCriterion(request.maxNewTokens)];
  if (request.maxContext !== undefined) criteria.push(contextLimitCriterion(request.maxContext));
  return { criteria, numSamples };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new GenerationCancelledError('generation was cancelled', { cause: signal.reason });
}

async function runGraph(plan: Plan, graph: 'embed' | 'decoder', feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> {
  throwIfAborted(plan.request.signal);
  const out = await plan.runner.run(graph, feeds, outputNames);
  // A signal that fired during the run stops the loop before any sampling or streaming.
  throwIfAborted(plan.request.signal);
  return out;
}

/**
 * Samples the next token of `row` from logits at `offset`, and reports the row if it finished.
 * Returns true when the row goes on.
 */
function advance(plan: Plan, row: Row, logits: Float32Array, offset: number, vocab: number): boolean {
  const token = sampleWith(logits.subarray(offset, offset + vocab), plan.greedy, plan.processors, row.rng);
  row.tokens.push(token);
  plan.stats.generatedTokens++;
  const reason = checkStop(plan.criteria, { promptLength: row.prompt.length, tokens: row.tokens });
  if (reason === null) return true;
  row.done = true;
  const tokens = reason === 'eos' ? row.tokens.slice(0, -1) : row.tokens.slice();
  const sequence: GeneratedSequence = { promptIndex: row.promptIndex, sampleIndex: row.sampleIndex, tokens, finishReason: reason };
  (plan.sequences[row.promptIndex] as GeneratedSequence[])[row.sampleIndex] = sequence;
  plan.request.onSequenceDone?.(sequence);
  return false;
}

/**
 * Decoder feeds for rows left-padded to `width` prompt slots, then `generated` tokens each:
 * the mask zeroes the padding, and position ids count real tokens only, so a row's numbers do not
 * depend on how much padding its batch needed.
 */
function maskAndPositions(rows: readonly Row[], width: number, generated: number, seq: number): { attention_mask: PlainTensor; position_ids: PlainTensor } {
  const total = width + generated;
  return {
    attention_mask: int64Tensor([rows.length, total], (i) => (i % total >= width - (rows[Math.floor(i / total)] as Row).prompt.length ? 1 : 0)),
    position_ids: int64Tensor([rows.length, seq], (i) => {
      const row = rows[Math.floor(i / seq)] as Row;
      const slot = total - seq + (i % seq);
      return Math.max(0, slot - (width - row.prompt.length));
    }),
  };
}

/** inputs_embeds [rows, width + generated, hidden]: zeros, the prompt, then the generated tokens' embeddings. */
function fullEmbeds(rows: readonly Row[], tokenEmbeds: ReadonlyMap<Row, Float32Array>, width: number, generated: number, hidden: number): PlainTensor {
  const total = width + generated;
  const data = new Float32Array(rows.length * total * hidden);
  rows.forEach((row, r) => {
    const base = r * total * hidden;
    data.set(row.prompt.embeds, base + (width - row.prompt.length) * hidden);
    data.set((tokenEmbeds.get(row) as Float32Array).subarray(0, generated * hidden), base + width * hidden);
  });
  return { type: 'float32', dims: [rows.length, total, hidden], data };
}

function emptyPast(plan: Plan, rows: number): Record<string, PlainTensor> {
  const { layers, kvHeads, headDim } = plan.runner.layout;
  const feeds: Record<string, PlainTensor> = {};
  for (let l = 0; l < layers; l++) {
    // One array per feed: the worker pool transfers feed buffers, and a buffer cannot be listed twice.
    for (const kind of ['key', 'value']) feeds[`past_key_values.${l}.${kind}`] = { type: 'float32', dims: [rows, kvHeads, 0, headDim], data: new Float32Array(0) };
  }
  return feeds;
}

/** present.N.* of a decoder run, as the next run's past_key_values.N.* restricted to `keep` rows (all when undefined). */
function nextPast(plan: Plan, out: Outputs, batch: number, length: number, keep?: readonly number[]): Record<string, PlainTensor> {
  const { layers, kvHeads, headDim } = plan.runner.layout;
  const past: Record<string, PlainTensor> = {};
  for (let l = 0; l < layers; l++) {
    for (const kind of ['key', 'value']) {
      const present = floatOutput(out, 'decoder', `present.${l}.${kind}`, [batch, kvHeads, length, headDim]);
      past[`past_key_values.${l}.${kind}`] = keep === undefined ? present : selectRows(present, keep);
    }
  }
  return past;
}

function decoderLogits(plan: Plan, out: Outputs, rows: number, seq: number): { data: Float32Array; vocab: number } {
  const logits = floatOutput(out, 'decoder', 'logits', [rows, seq, undefined]);
  plan.stats.decoderRuns++;
  plan.stats.decoderTokens += rows * seq;
  plan.stats.maxBatch = Math.max(plan.stats.maxBatch, rows);
  return { data: logits.data, vocab: logits.dims[2] as number };
}

async function embedTokens(plan: Plan, rows: readonly Row[]): Promise<PlainTensor> {
  const ids = int64Tensor([rows.length, 1], (i) => {
    const row = rows[i] as Row;
    return row.done ? plan.request.padId : (row.tokens[row.tokens.length - 1] as number);
  });
  plan.stats.embedRuns++;
  const out = await runGraph(plan, 'embed', { input_ids: ids });
  return floatOutput(out, 'embed', 'inputs_embeds', [rows.length, 1, plan.runner.layout.hidden]);
}

/**
 * KV-cache decoding: one prefill per prompt (all prompts in one batch), its cache tiled over the
 * prompt's K samples, then one token per step for every live row.
 */
async function cachedLoop(plan: Plan, prompts: readonly EmbeddedPrompt[], rows: readonly Row[]): Promise<void> {
  const hidden = plan.runner.layout.hidden;
  const width = Math.max(...prompts.map((p) => p.length));
  const promptRows = prompts.map((prompt, promptIndex) => rows.find((r) => r.promptIndex === promptIndex) as Row);
  const embeds = new Float32Array(prompts.length * width * hidden);
  prompts.forEach((p, i) => embeds.set(p.embeds, (i * width + width - p.length) * hidden));
  const prefill = await runGraph(plan, 'decoder', {
    inputs_embeds: { type: 'float32', dims: [prompts.length, width, hidden], data: embeds },
    ...maskAndPositions(promptRows, width, 0, width),
    ...emptyPast(plan, prompts.length),
  });
  const first = decoderLogits(plan, prefill, prompts.length, width);
  let batch = rows.filter((row) => advance(plan, row, first.data, (row.promptIndex * width + width - 1) * first.vocab, first.vocab));
  if (batch.length === 0) return;
  let past = nextPast(plan, prefill, prompts.length, width, batch.map((r) => r.promptIndex));
  const compactAt = plan.request.compactAt ?? DEFAULT_COMPACT_AT;

  for (let generated = 1; ; generated++) {
    const step = await runGraph(plan, 'decoder', {
      inputs_embeds: await embedTokens(plan, batch),
      ...maskAndPositions(batch, width, generated, 1),
      ...past,
    });
    const { data, vocab } = decoderLogits(plan, step, batch.length, 1);
    let live = 0;
    batch.forEach((row, i) => {
      if (!row.done && advance(plan, row, data, i * vocab, vocab)) live++;
    });
    if (live === 0) return;
    if (live < batch.length && batch.length - live >= compactAt * batch.length) {
      const keep = batch.flatMap((row, i) => (row.done ? [] : [i]));
      past = nextPast(plan, step, batch.length, width + generated, keep);
      batch = keep.map((i) => batch[i] as Row);
    } else {
      past = nextPast(plan, step, batch.length, width + generated);
    }
  }
}

/** The baseline: every step runs the whole sequence of every live row, with no cache. */
async function uncachedLoop(plan: Plan, prompts: readonly EmbeddedPrompt[], rows: readonly Row[]): Promise<void> {
  const hidden = plan.runner.layout.hidden;
  const width = Math.max(...prompts.map((p) => p.length));
  const tokenEmbeds = new Map(rows.map((row) => [row, new Float32Array(plan.request.maxNewTokens * hidden)]));
  let batch = rows;
  for (let generated = 0; ; generated++) {
    const total = width + generated;
    const out = await runGraph(
      plan,
      'decoder',
      {
        inputs_embeds: fullEmbeds(batch, tokenEmbeds, width, generated, hidden),
        ...maskAndPositions(batch, width, generated, total),
        ...emptyPast(plan, batch.length),
      },
      ['logits'],
    );
    const { data, vocab } = decoderLogits(plan, out, batch.length, total);
    batch = batch.filter((row, i) => advance(plan, row, data, (i * total + total - 1) * vocab, vocab));
    if (batch.length === 0) return;
    const next = (await embedTokens(plan, batch)).data as Float32Array;
    batch.forEach((row, i) => (tokenEmbeds.get(row) as Float32Array).set(next.subarray(i * hidden, (i + 1) * hidden), generated * hidden));
  }
}

/**
 * Generates `numSamples` continuations of every prompt in one batch. Resolves when all are done;
 * each is also passed to `onSequenceDone` the moment it finishes.
 */
export async function generate(runner: GenerationRunner, request: GenerateRequest): Promise<GenerationResult> {
  const { criteria, numSamples } = checkRequest(request);
  const processors = samplingProcessors(request);
  const stats: GenerationStats = { decoderRuns: 0, embedRuns: 0, visionRuns: 0, generatedTokens: 0, decoderTokens: 0, maxBatch: 0 };
  const plan: Plan = {
    runner,
    request,
    greedy: request.temperature === 0,
    processors,
    criteria,
    stats,
    sequences: request.prompts.map(() => []),
  };
  throwIfAborted(request.signal);
  const prompts = await embedPrompts(runner, request.prompts, request, stats, () => throwIfAborted(request.signal));
  prompts.forEach((p, i) => {
    if (request.maxContext !== undefined && p.length >= request.maxContext) {
      throw new InvalidArgumentError(`prompts[${i}] is ${p.length} tokens long, which leaves no room in maxContext ${request.maxContext}`, { field: `prompts[${i}]` });
    }
  });
  const seed = request.seed ?? 0;
  const rows: Row[] = prompts.flatMap((prompt, promptIndex) =>
    Array.from({ length: numSamples }, (_, sampleIndex) => ({
      promptIndex,
      sampleIndex,
      prompt,
      rng: createRng(deriveSeed(seed, request.prompts[promptIndex]?.id ?? promptIndex, sampleIndex)),
      tokens: [],
      done: false,
    })),
  );
  await ((request.useKvCache ?? true) ? cachedLoop(plan, prompts, rows) : uncachedLoop(plan, prompts, rows));
  return { sequences: plan.sequences, stats };
}
