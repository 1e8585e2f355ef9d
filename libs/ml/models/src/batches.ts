import type { ModelConfig } from './config.js';
import { ModelInputError } from './errors.js';
import { expandImageTokens, padBatch, type TokenBatch } from './prefix.js';

/** One SFT example: the raw prompt (one `<image>` token) and the response tokens (with eos if it should be learned). */
export interface SftExample {
  prompt: readonly number[];
  response: readonly number[];
}

/** Feeds of the SFT training graph besides pixel_values (row-major [batch, seq]). */
export interface SftBatch extends TokenBatch {
  targets: BigInt64Array;
  lossWeights: Float32Array;
}

function sequences(examples: readonly { prompt: readonly number[]; response: readonly number[] }[], config: ModelConfig): { ids: number[][]; starts: number[] } {
  if (examples.length === 0) throw new ModelInputError('a batch needs at least one example');
  const ids: number[][] = [];
  const starts: number[] = [];
  examples.forEach((ex, i) => {
    if (ex.response.length === 0) throw new ModelInputError(`example ${i} has an empty response`);
    const prompt = expandImageTokens(ex.prompt, config);
    starts.push(prompt.length);
    ids.push([...prompt, ...ex.response]);
  });
  return { ids, starts };
}

function column(batch: TokenBatch, row: number, length: number, side: 'left' | 'right'): number {
  return row * batch.seq + (side === 'left' ? batch.seq - length : 0);
}

/**
 * An SFT batch: image-expanded prompt + response per row, padded on `side` (default right).
 * targets[s] is the token at s + 1 (pad id where there is none); loss_weights is 1 where that next
 * token is a response token, so the loss covers the response only.
 */
export function buildSftBatch(examples: readonly SftExample[], config: ModelConfig, side: 'left' | 'right' = 'right'): SftBatch {
  const { ids, starts } = sequences(examples, config);
  const batch = padBatch(ids, config.tokens.pad, side);
  const targets = new BigInt64Array(batch.batch * batch.seq).fill(BigInt(config.tokens.pad));
  const lossWeights = new Float32Array(batch.batch * batch.seq);
  ids.forEach((row, r) => {
    const at = column(batch, r, row.length, side);
    for (let s = 0; s + 1 < row.length; s++) {
      targets[at + s] = BigInt(row[s + 1] as number);
      if (s + 1 >= (starts[r] as number)) lossWeights[at + s] = 1;
    }
  });
  return { ...batch, targets, lossWeights };
}

/**
 * Where a PRM reads its step scores in a response: every separator token (the world's "\n\n",
 * which ends a step) and the last token (which ends the final step), as indices into `response`.
 */
export function stepBoundaries(response: readonly number[], separatorId: number): number[] {
  const out: number[] = [];
  response.forEach((id, i) => {
    if (id === separatorId) out.push(i);
  });
  const last = response.length - 1;
  if (last >= 0 && out[out.length - 1] !== last) out.push(last);
  return out;
}

/** One PRM example: a soft label in [0, 1] (and optionally a weight) per step boundary of the response. */
export interface PrmExample {
  prompt: readonly number[];
  response: readonly number[];
  /** One per `stepBoundaries(response, separatorId)` entry, in order. */
  labels: readonly number[];
  weights?: readonly number[];
}

/** Feeds of the PRM training graph besides pixel_values; `boundaries[r]` are the model positions (columns) of row r's labels. */
export interface PrmBatch extends TokenBatch {
  targets: Float32Array;
  lossWeights: Float32Array;
  boundaries: number[][];
}

/** A PRM training batch (also gives the positions at which `prm_scores.onnx` output is read). */
export function buildPrmBatch(examples: readonly PrmExample[], config: ModelConfig, separatorId: number, side: 'left' | 'right' = 'right'): PrmBatch {
  const { ids, starts } = sequences(examples, config);
  const batch = padBatch(ids, config.tokens.pad, side);
  const targets = new Float32Array(batch.batch * batch.seq);
  const lossWeights = new Float32Array(batch.batch * batch.seq);
  const boundaries = examples.map((ex, r) => {
    const steps = stepBoundaries(ex.response, separatorId);
    if (ex.labels.length !== steps.length) throw new ModelInputError(`example ${r} has ${ex.labels.length} labels for ${steps.length} step boundaries`);
    if (ex.weights !== undefined && ex.weights.length !== steps.length) throw new ModelInputError(`example ${r} has ${ex.weights.length} weights for ${steps.length} step boundaries`);
    const at = column(batch, r, (ids[r] as number[]).length, side);
    return steps.map((s, k) => {
      const label = ex.labels[k] as number;
      if (!(label >= 0 && label <= 1)) throw new ModelInputError(`example ${r}: label ${k} = ${label} is not in [0, 1]`);
      const position = at + (starts[r] as number) + s;
      targets[position] = label;
      lossWeights[position] = ex.weights?.[k] ?? 1;
      return position - r * batch.seq;
    });
  });
  return { ...batch, targets, lossWeights, boundaries };
}
