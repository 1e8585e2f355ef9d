import { rotaryTables, type GraphBuilder, type Value } from '@mstar/graph';
import { numImageTokens, textHeadDim, type ModelConfig } from './config.js';
import type { ModelParams } from './params.js';
import { PROJECTOR_PREFIX, VISION_PREFIX } from './params.js';

/** Added to the attention scores of masked keys; finite so a fully masked row stays NaN-free. */
const MASKED = -1e9;

/** x @ W^T (+ b) for a Hugging Face Linear weight [out, in]; ORT folds the transpose of an initializer. */
export function linear(g: GraphBuilder, x: Value, p: ModelParams, name: string): Value {
  const y = g.matmul(x, g.transpose(p.get(`${name}.weight`), [1, 0]));
  const bias = `${name}.bias`;
  return p.has(bias) ? g.add(y, p.get(bias)) : y;
}

function scalarIndex(g: GraphBuilder, shape: Value, axis: number): Value {
  return g.gather(shape, g.scalar(axis, 'int64'), 0);
}

/**
 * The vision tower and projector: pixel_values [batch, C, H, W] -> image features [batch, patches,
 * text hidden]. The patch embedding is a stride-`patch` Conv written as a patch reshape and one
 * MatMul against the Conv weight flattened to [width, C*p*p] (the same (c, y, x) order).
 */
export function imageFeatures(g: GraphBuilder, config: ModelConfig, p: ModelParams, pixelValues: Value): Value {
  const v = config.vision;
  const grid = v.imageSize / v.patchSize;
  const patches = numImageTokens(config);
  const vp = VISION_PREFIX;
  const patchDim = v.channels * v.patchSize * v.patchSize;
  const blocks = g.reshape(pixelValues, [0, v.channels, grid, v.patchSize, grid, v.patchSize]);
  const flat = g.reshape(g.transpose(blocks, [0, 2, 4, 1, 3, 5]), [0, patches, patchDim]);
  const convWeight = g.reshape(p.get(`${vp}embeddings.patch_embedding.weight`), [v.hiddenSize, patchDim]);
  let x = g.add(g.matmul(flat, g.transpose(convWeight, [1, 0])), p.get(`${vp}embeddings.patch_embedding.bias`));
  x = g.add(x, p.get(`${vp}embeddings.position_embedding.weight`));

  const hd = v.hiddenSize / v.heads;
  const heads = (t: Value): Value => g.transpose(g.reshape(t, [0, patches, v.heads, hd]), [0, 2, 1, 3]);
  const ln = (t: Value, name: string): Value => g.layerNorm(t, p.get(`${name}.weight`), p.get(`${name}.bias`), v.layerNormEps);
  for (let l = 0; l < v.layers; l++) {
    const lp = `${vp}encoder.layers.${l}.`;
    const h = ln(x, `${lp}layer_norm1`);
    const q = g.mulScalar(heads(linear(g, h, p, `${lp}self_attn.q_proj`)), 1 / Math.sqrt(hd));
    const k = heads(linear(g, h, p, `${lp}self_attn.k_proj`));
    const val = heads(linear(g, h, p, `${lp}self_attn.v_proj`));
    const probs = g.softmax(g.matmul(q, g.transpose(k, [0, 1, 3, 2])), -1);
    const ctx = g.reshape(g.transpose(g.matmul(probs, val), [0, 2, 1, 3]), [0, patches, v.hiddenSize]);
    x = g.add(x, linear(g, ctx, p, `${lp}self_attn.out_proj`));
    const m = ln(x, `${lp}layer_norm2`);
    x = g.add(x, linear(g, g.gelu(linear(g, m, p, `${lp}mlp.fc1`)), p, `${lp}mlp.fc2`));
  }
  x = ln(x, `${vp}post_layernorm`);
  return linear(g, g.gelu(linear(g, x, p, `${PROJECTOR_PREFIX}linear_1`)), p, `${PROJECTOR_PREFIX}linear_2`);
}

/** Token embeddings: input_ids [batch, seq] -> [batch, seq, hidden]. */
export function embedTokens(g: GraphBuilder, p: ModelParams, inputIds: Value): Value {
  return g.gather(p.get('model.embed_tokens.weight'), inputIds, 0);
}

/**
 * Puts the image features in place of the image tokens: the k-th `<image>` token of a row takes
 * feature vector k of that row's image (rows hold 0 or exactly `patches` image tokens).
 */
export function mergeImageFeaturesInGraph(g: GraphBuilder, config: ModelConfig, inputIds: Value, textEmbeds: Value, features: Value): Value {
  const isImage = g.equal(inputIds, g.scalar(config.tokens.image, 'int64'));
  const counts = cumsum(g, g.cast(isImage, 'int64'), 1);
  const clamp = (x: Value, op: 'Max' | 'Min', bound: number): Value => g.addNode(op, [x, g.scalar(bound, 'int64')], [{ dtype: 'int64', shape: x.shape }])[0] as Value;
  // Clamped so that text positions (index -1) and surplus image tokens still gather a valid row.
  const index = clamp(clamp(g.addScalar(counts, -1), 'Max', 0), 'Min', numImageTokens(config) - 1);
  const gathered = g.gatherElements(features, g.expand(g.unsqueeze(index, [2]), textEmbeds), 1);
  return g.where(g.unsqueeze(isImage, [2]), gathered, textEmbeds);
}

function cumsum(g: GraphBuilder, x: Value, axis: number): Value {
  return g.addNode('CumSum', [x, g.scalar(axis, 'int64')], [{ dtype: x.dtype, shape: x.shape }])[0] as Value;
}

/** position_ids from a left- or right-padded attention mask: cumsum(mask) - 1, and 1 at padding (as Hugging Face). */
export function positionIdsInGraph(g: GraphBuilder, attentionMask: Value): Value {
  const pos = g.addScalar(cumsum(g, attentionMask, 1), -1);
  return g.where(g.equal(attentionMask, g.scalar(0, 'int64')), g.scalar(1, 'int64'), pos);
}

export interface LanguageModelInputs {
  /** [batch, seq, hidden] */
  embeds: Value;
  /** int64 [batch, past + seq]: 1 for real tokens, 0 for padding. */
  attentionMask: Value;
  /** int64 [batch, seq] rotary positions. */
  positionIds: Value;
  /** Per layer the cached keys and values [batch, kvHeads, past, headDim] (post-rotary keys). */
  past?: readonly { key: Value; value: Value }[];
  /** Training graphs square with Mul in RMSNorm (ORT's Pow is slow there); inference uses Pow so ORT fuses the norm. */
  training?: boolean;
}

export interface LanguageModelOutputs {
  /** Final-norm hidden states [batch, seq, hidden]. */
  hidden: Value;
  /** Per layer keys/values [batch, kvHeads, past + seq, headDim]. */
  present: { key: Value; value: Value }[];
}

/**
 * Llama decoder layers with a KV cache (also used without one, for training and scoring). Causal
 * masking is by index in the key sequence: query i of this chunk sits at key index past + i.
 */
export function languageModel(g: GraphBuilder, config: ModelConfig, p: ModelParams, inputs: LanguageModelInputs): LanguageModelOutputs {
  const t = config.text;
  const hd = textHeadDim(config);
  const group = t.heads / t.kvHeads;
  const square = inputs.training === true ? 'mul' : 'pow';
  const norm = (x: Value, name: string): Value => g.rmsNorm(x, p.get(name), t.rmsNormEps, square);

  const tables = rotaryTables(t.maxPositionEmbeddings, hd, t.ropeTheta);
  const rope = (table: Float64Array, name: string): Value =>
    g.unsqueeze(g.gather(g.constant(Float32Array.from(table), [t.maxPositionEmbeddings, hd], 'float32', name), inputs.positionIds, 0), [1]);
  const cos = rope(tables.cos, 'rope_cos');
  const sin = rope(tables.sin, 'rope_sin');

  let bias: Value | undefined;
  const attentionBias = (scores: Value): Value => {
    if (bias !== undefined) return bias;
    bias = maskBias(g, inputs.attentionMask, inputs.embeds, group, scores);
    return bias;
  };

  let x = inputs.embeds;
  const present: { key: Value; value: Value }[] = [];
  for (let l = 0; l < t.layers; l++) {
    const lp = `model.layers.${l}.`;
    const h = norm(x, `${lp}input_layernorm.weight`);
    // One MatMul for q, k and v against the concatenated [out, in] weights.
    const wqkv = g.concat(['q_proj', 'k_proj', 'v_proj'].map((n) => p.get(`${lp}self_attn.${n}.weight`)), 0);
    const qkv = g.matmul(h, g.transpose(wqkv, [1, 0]));
    const [q0, k0, v0] = g.split(qkv, [t.heads * hd, t.kvHeads * hd, t.kvHeads * hd], -1) as [Value, Value, Value];
    const heads = (x0: Value, n: number): Value => g.transpose(g.reshape(x0, [0, 0, n, hd]), [0, 2, 1, 3]);
    const q = g.mulScalar(g.rotary(heads(q0, t.heads), cos, sin), 1 / Math.sqrt(hd));
    let k = g.rotary(heads(k0, t.kvHeads), cos, sin);
    let v = heads(v0, t.kvHeads);
    const past = inputs.past?.[l];
    if (past !== undefined) {
      k = g.concat([past.key, k], 2);
      v = g.concat([past.value, v], 2);
    }
    present.push({ key: k, value: v });
    // Grouped-query attention without broadcasting: the query heads of one KV head are stacked as rows
    // ([b, kvh, group*seq, hd]), matching Hugging Face's repeat_kv (query head i reads KV head i / group).
    const qg = g.reshape(q, [0, t.kvHeads, -1, hd]);
    const scores = g.matmul(qg, g.transpose(k, [0, 1, 3, 2]));
    const probs = g.softmax(g.add(scores, attentionBias(scores)), -1);
    const ctx = g.reshape(g.transpose(g.reshape(g.matmul(probs, v), [0, t.heads, -1, hd]), [0, 2, 1, 3]), [0, 0, t.heads * hd]);
    x = g.add(x, linear(g, ctx, p, `${lp}self_attn.o_proj`));

    const m = norm(x, `${lp}post_attention_layernorm.weight`);
    const gateUp = g.concat(['gate_proj', 'up_proj'].map((n) => p.get(`${lp}mlp.${n}.weight`)), 0);
    const [gate, up] = g.split(g.matmul(m, g.transpose(gateUp, [1, 0])), [t.intermediateSize, t.intermediateSize], -1) as [Value, Value];
    x = g.add(x, linear(g, g.swiglu(gate, up), p, `${lp}mlp.down_proj`));
  }
  return { hidden: norm(x, 'model.norm.weight'), present };
}

/**
 * Additive attention bias [batch, 1, group*seq, keys]: MASKED where the key is padding or lies after
 * the query (query i of the chunk is key index keys - seq + i), tiled over the stacked query heads.
 */
function maskBias(g: GraphBuilder, attentionMask: Value, embeds: Value, group: number, scores: Value): Value {
  const int = (n: number): Value => g.scalar(n, 'int64');
  const keys = scalarIndex(g, g.shapeOf(attentionMask), 1);
  const queries = scalarIndex(g, g.shapeOf(embeds), 1);
  const range = (start: Value, limit: Value, dim: string | number): Value =>
    g.addNode('Range', [start, limit, int(1)], [{ dtype: 'int64', shape: [dim] }])[0] as Value;
  const keyDim = attentionMask.shape[1] as string | number;
  const queryDim = embeds.shape[1] as string | number;
  const keyIndex = range(int(0), keys, keyDim);
  const queryIndex = range(g.sub(keys, queries), keys, queryDim);
  const future = g.greater(g.unsqueeze(keyIndex, [0]), g.unsqueeze(queryIndex, [1]));
  const padding = g.unsqueeze(g.equal(attentionMask, int(0)), [1]);
  const hidden = g.addNode('Or', [future, padding], [{ dtype: 'bool', shape: [attentionMask.shape[0] as string | number, queryDim, keyDim] }])[0] as Value;
  const dtype = scores.dtype;
  const bias = g.unsqueeze(g.where(hidden, g.scalar(MASKED, dtype), g.scalar(0, dtype)), [1]);
  if (group === 1) return bias;
  // Row r of the stacked heads is query r % seq, so the [seq, keys] block repeats `group` times.
  return g.addNode('Tile', [bias, g.int64s([1, 1, group, 1])], [{ dtype, shape: [bias.shape[0] as string | number, 1, scores.shape[2] as string | number, keyDim] }])[0] as Value;
}

/** logits [batch, seq, vocab] from final hidden states (tied embeddings read the table with transB). */
export function lmHead(g: GraphBuilder, config: ModelConfig, p: ModelParams, hidden: Value): Value {
  const weight = config.text.tieWordEmbeddings ? p.get('model.embed_tokens.weight') : p.get('lm_head.weight');
  return g.matmul(hidden, g.transpose(weight, [1, 0]));
}

/** PRM head: sigmoid logit per position, [batch, seq] (before the sigmoid). */
export function scoreLogits(g: GraphBuilder, p: ModelParams, hidden: Value): Value {
  return g.squeeze(linear(g, hidden, p, 'score'), [2]);
}
