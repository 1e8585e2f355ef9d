import { numImageTokens, type ModelConfig } from './config.js';
import { ModelInputError } from './errors.js';

/**
 * The image-token convention: a prompt holds ONE `<image>` token; before the model sees it, that
 * token is expanded to `numImageTokens(config)` (16) consecutive `<image>` tokens, and the k-th of
 * them takes image feature vector k. So every id array, attention mask, position id and loss weight
 * has one entry per model position, and text after the image sits 15 positions later than in the
 * unexpanded prompt. A text-only sequence has no `<image>` token at all.
 */
export function expandImageTokens(ids: readonly number[], config: ModelConfig): number[] {
  const image = config.tokens.image;
  const count = ids.filter((id) => id === image).length;
  if (count > 1) throw new ModelInputError(`a prompt may hold at most one <image> token (id ${image}), found ${count}`);
  const out: number[] = [];
  for (const id of ids) {
    if (id === image) for (let k = 0; k < numImageTokens(config); k++) out.push(image);
    else out.push(id);
  }
  return out;
}

/** A padded batch of token sequences, row-major int64 arrays [batch, seq]. */
export interface TokenBatch {
  batch: number;
  seq: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  positionIds: BigInt64Array;
}

/** position_ids for a padded batch: running count of real tokens minus one, and 1 at padding (Hugging Face's rule). */
export function positionIdsFromMask(mask: BigInt64Array | readonly number[], batch: number, seq: number): BigInt64Array {
  if (mask.length !== batch * seq) throw new ModelInputError(`attention mask has ${mask.length} entries, expected ${batch} x ${seq}`);
  const out = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    let seen = 0n;
    for (let s = 0; s < seq; s++) {
      const i = b * seq + s;
      const m = BigInt(mask[i] as bigint | number);
      seen += m;
      out[i] = m === 0n ? 1n : seen - 1n;
    }
  }
  return out;
}

/**
 * Pads token sequences into one batch. Generation pads on the left (every row's last token is at
 * the same column, so the next token is appended for all rows at once); training may pad right.
 */
export function padBatch(sequences: readonly (readonly number[])[], padId: number, side: 'left' | 'right' = 'left'): TokenBatch {
  if (sequences.length === 0) throw new ModelInputError('a batch needs at least one sequence');
  const seq = Math.max(...sequences.map((s) => s.length));
  if (seq === 0) throw new ModelInputError('every sequence of the batch is empty');
  const batch = sequences.length;
  const inputIds = new BigInt64Array(batch * seq).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seq);
  sequences.forEach((ids, b) => {
    const offset = side === 'left' ? seq - ids.length : 0;
    ids.forEach((id, s) => {
      inputIds[b * seq + offset + s] = BigInt(id);
      attentionMask[b * seq + offset + s] = 1n;
    });
  });
  return { batch, seq, inputIds, attentionMask, positionIds: positionIdsFromMask(attentionMask, batch, seq) };
}

/**
 * The prefill batch for image prompts: expands each prompt's `<image>` token and left-pads. Feed
 * inputIds to embed_tokens.onnx, the images to vision_encoder.onnx, merge with
 * `mergeImageFeatures`, then run decoder_model_merged.onnx with attentionMask and positionIds.
 */
export function buildPrefix(prompts: readonly (readonly number[])[], config: ModelConfig): TokenBatch {
  return padBatch(
    prompts.map((p) => expandImageTokens(p, config)),
    config.tokens.pad,
    'left',
  );
}

/**
 * Replaces the embeddings of the `<image>` tokens of each row with that row's image features, in
 * order (the same merge the training and scoring graphs do inside the graph). `inputsEmbeds`
 * [batch, seq, hidden] is modified in place and returned; `imageFeatures` is [batch, patches,
 * hidden]. Rows hold 0 or exactly `patches` image tokens.
 */
export function mergeImageFeatures(
  config: ModelConfig,
  batch: { batch: number; seq: number; inputIds: BigInt64Array },
  inputsEmbeds: Float32Array,
  imageFeatures: Float32Array,
): Float32Array {
  const hidden = config.text.hiddenSize;
  const patches = numImageTokens(config);
  const { batch: n, seq, inputIds } = batch;
  if (inputsEmbeds.length !== n * seq * hidden) throw new ModelInputError(`inputs_embeds has ${inputsEmbeds.length} values, expected ${n} x ${seq} x ${hidden}`);
  if (imageFeatures.length !== n * patches * hidden) {
    throw new ModelInputError(`image_features has ${imageFeatures.length} values, expected ${n} x ${patches} x ${hidden}`);
  }
  const image = BigInt(config.tokens.image);
  for (let b = 0; b < n; b++) {
    let k = 0;
    for (let s = 0; s < seq; s++) {
      if (inputIds[b * seq + s] !== image) continue;
      if (k < patches) {
        const src = (b * patches + k) * hidden;
        inputsEmbeds.set(imageFeatures.subarray(src, src + hidden), (b * seq + s) * hidden);
      }
      k++;
    }
    if (k !== 0 && k !== patches) throw new ModelInputError(`row ${b} holds ${k} <image> tokens; expected 0 or ${patches} (expand the prompt with expandImageTokens)`);
  }
  return inputsEmbeds;
}
