import { GraphBuildError } from './errors.js';
import { buildTrainingGraph, type GradientOptions, type TrainingGraph } from './autodiff.js';
import { GraphBuilder, type Value } from './graph.js';
import type { Dim } from './dims.js';
import type { DType } from './tensor.js';

/** A Llama-style decoder: RMSNorm, rotary GQA attention, SwiGLU MLP, untied LM head. */
export interface DecoderConfig {
  vocab: number;
  dModel: number;
  layers: number;
  heads: number;
  /** Key/value heads (grouped-query attention); must divide `heads`. */
  kvHeads: number;
  ffn: number;
  seq: number;
  /** Batch size: a number, or a symbol (default 'batch') for a variable batch. */
  batch?: Dim;
  dtype?: DType;
  ropeTheta?: number;
  normEps?: number;
  /** Reuse the embedding table as the LM head (logits = h @ embed^T); default false. */
  tieEmbeddings?: boolean;
}

export interface DecoderInputs {
  /** int64 [batch, seq] token ids. */
  inputIds: Value;
  /** [batch, seq] 1 for real tokens, 0 for padding (keys at padded positions are masked out). */
  attentionMask: Value;
}

function checkConfig(c: DecoderConfig): number {
  const bad: string[] = [];
  for (const k of ['vocab', 'dModel', 'layers', 'heads', 'kvHeads', 'ffn', 'seq'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad.push(`${k} = ${c[k]} must be a positive integer`);
  }
  if (c.dModel % c.heads !== 0) bad.push(`dModel ${c.dModel} is not divisible by heads ${c.heads}`);
  if (c.heads % c.kvHeads !== 0) bad.push(`heads ${c.heads} is not divisible by kvHeads ${c.kvHeads}`);
  const headDim = c.dModel / c.heads;
  if (headDim % 2 !== 0) bad.push(`head dim ${headDim} must be even for rotary embeddings`);
  if (bad.length > 0) throw new GraphBuildError(`invalid decoder config: ${bad.join('; ')}`);
  return headDim;
}

/** cos/sin tables [seq, headDim], each half repeated (the rotate-half convention). */
export function rotaryTables(seq: number, headDim: number, theta = 10000): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(seq * headDim);
  const sin = new Float64Array(seq * headDim);
  const half = headDim / 2;
  for (let pos = 0; pos < seq; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos / theta ** ((2 * i) / headDim);
      for (const j of [i, i + half]) {
        cos[pos * headDim + j] = Math.cos(angle);
        sin[pos * headDim + j] = Math.sin(angle);
      }
    }
  }
  return { cos, sin };
}

function groupedCausalMask(g: GraphBuilder, seq: number, group: number, dtype: DType): Value {
  const data = new Float64Array(group * seq * seq);
  for (let r = 0; r < group * seq; r++) for (let j = (r % seq) + 1; j < seq; j++) data[r * seq + j] = -1e9;
  return tableConstant(g, data, [group * seq, seq], dtype, 'causal_mask');
}

function tableConstant(g: GraphBuilder, data: Float64Array, shape: number[], dtype: DType, name: string): Value {
  return g.constant(dtype === 'float64' ? data : Float32Array.from(data), shape, dtype, name);
}

/**
 * Adds the decoder's params and forward pass to `g` and returns logits [batch, seq, vocab]. Params are
 * named embed, layers.<i>.{attn_norm, wqkv, wo, mlp_norm, w_gate_up, w_down}, final_norm, lm_head.
 */
export function decoderLogits(g: GraphBuilder, config: DecoderConfig, inputs: DecoderInputs, options: { training?: boolean } = {}): Value {
  const headDim = checkConfig(config);
  const { dModel: d, heads: h, kvHeads: kvh, seq, ffn } = config;
  const dtype = config.dtype ?? 'float32';
  const eps = config.normEps ?? 1e-6;
  const group = h / kvh;
  const residualStd = 0.02 / Math.sqrt(2 * config.layers);
  const square = options.training === true ? 'mul' : 'pow';
  const norm = (v: Value, w: Value): Value => g.rmsNorm(v, w, eps, square);

  const tables = rotaryTables(seq, headDim, config.ropeTheta);
  const cos = tableConstant(g, tables.cos, [seq, headDim], dtype, 'rope_cos');
  const sin = tableConstant(g, tables.sin, [seq, headDim], dtype, 'rope_sin');
  // Additive bias [batch, 1, group*seq, seq]: padded keys, plus the causal bias tiled over the query
  // heads that share a KV head (row r is query position r % seq).
  const keep = g.cast(inputs.attentionMask, dtype);
  const padBias = g.unsqueeze(g.mulScalar(g.sub(g.scalar(1, dtype), keep), -1e9), [1, 2]);
  const maskBias = g.add(padBias, groupedCausalMask(g, seq, group, dtype));

  const embed = g.param('embed', [config.vocab, d], { dtype });
  let x = g.gather(embed, inputs.inputIds, 0);
  for (let l = 0; l < config.layers; l++) {
    const p = `layers.${l}.`;
    const attnNorm = g.param(`${p}attn_norm`, [d], { dtype, init: { kind: 'ones' } });
    const wqkv = g.param(`${p}wqkv`, [d, (h + 2 * kvh) * headDim], { dtype });
    const wo = g.param(`${p}wo`, [h * headDim, d], { dtype, init: { kind: 'normal', std: residualStd } });
    const mlpNorm = g.param(`${p}mlp_norm`, [d], { dtype, init: { kind: 'ones' } });
    const wGateUp = g.param(`${p}w_gate_up`, [d, 2 * ffn], { dtype });
    const wDown = g.param(`${p}w_down`, [ffn, d], { dtype, init: { kind: 'normal', std: residualStd } });

    // One GEMM for q, k and v, then per-head layout [batch, heads, seq, headDim].
    const qkv = g.matmul(norm(x, attnNorm), wqkv);
    const [q0, k0, v0] = g.split(qkv, [h * headDim, kvh * headDim, kvh * headDim], -1) as [Value, Value, Value];
    const heads = (t: Value, n: number): Value => g.transpose(g.reshape(t, [0, 0, n, headDim]), [0, 2, 1, 3]);
    const q = g.mulScalar(g.rotary(heads(q0, h), cos, sin), 1 / Math.sqrt(headDim));
    const k = g.rotary(heads(k0, kvh), cos, sin);
    const v = heads(v0, kvh);
    // Grouped-query attention without broadcasting: the `group` query heads of a KV head are stacked
    // as rows, q [b, kvh, group*s, hd] against k/v [b, kvh, s, hd], so both products and their
    // gradients are plain batched GEMMs with nothing to reduce.
    const qg = g.reshape(q, [0, kvh, group * seq, headDim]);
    const probs = g.softmax(g.add(g.matmul(qg, g.transpose(k, [0, 1, 3, 2])), maskBias), -1);
    const ctx = g.reshape(g.transpose(g.reshape(g.matmul(probs, v), [0, h, seq, headDim]), [0, 2, 1, 3]), [0, 0, h * headDim]);
    x = g.add(x, g.matmul(ctx, wo));

    const gateUp = g.matmul(norm(x, mlpNorm), wGateUp);
    const [gate, up] = g.split(gateUp, [ffn, ffn], -1) as [Value, Value];
    x = g.add(x, g.matmul(g.swiglu(gate, up), wDown));
  }
  const finalNorm = g.param('final_norm', [d], { dtype, init: { kind: 'ones' } });
  const hidden = norm(x, finalNorm);
  if (config.tieEmbeddings === true) {
    // Gemm with transB reads the [vocab, d] table in place instead of materializing its transpose.
    return g.reshape(g.gemm(g.reshape(hidden, [-1, d]), embed, { transB: true }), [-1, seq, config.vocab]);
  }
  const lmHead = g.param('lm_head', [d, config.vocab], { dtype });
  return g.matmul(hidden, lmHead);
}

export interface DecoderTrainingGraph {
  graph: GraphBuilder;
  training: TrainingGraph;
  /** Graph input names: input_ids (int64), attention_mask and loss_weights (float) [batch, seq], targets (int64). */
  inputNames: { inputIds: string; attentionMask: string; targets: string; lossWeights: string };
}

/**
 * Decoder training graph: loss = sum(w * CE) / sum(w) over tokens, where w = loss_weights (0 ignores a
 * token), outputs `loss` and `grad.<param>`. Serialize with toModel(graph, { params: 'inputs' }).
 */
export function buildDecoderTrainingGraph(config: DecoderConfig, options: GradientOptions = {}): DecoderTrainingGraph {
  const g = new GraphBuilder('decoder_train');
  const dtype = config.dtype ?? 'float32';
  const shape = [config.batch ?? 'batch', config.seq];
  const inputIds = g.input('input_ids', 'int64', shape);
  const attentionMask = g.input('attention_mask', dtype, shape);
  const targets = g.input('targets', 'int64', shape);
  const lossWeights = g.input('loss_weights', dtype, shape);
  const logits = decoderLogits(g, config, { inputIds, attentionMask }, { training: true });
  const loss = g.tokenCrossEntropy(logits, targets, { weights: lossWeights, reduction: 'mean' });
  const training = buildTrainingGraph(g, { ...options, loss });
  return {
    graph: g,
    training,
    inputNames: { inputIds: 'input_ids', attentionMask: 'attention_mask', targets: 'targets', lossWeights: 'loss_weights' },
  };
}

/** Parameter count of a decoder config. */
export function decoderParamCount(c: DecoderConfig): number {
  const headDim = c.dModel / c.heads;
  const perLayer = 2 * c.dModel + c.dModel * (c.heads + 2 * c.kvHeads) * headDim + c.heads * headDim * c.dModel + 3 * c.dModel * c.ffn;
  return (c.tieEmbeddings === true ? 1 : 2) * c.vocab * c.dModel + c.layers * perLayer + c.dModel;
}

/**
 * Matmul FLOPs of one forward+backward step over `tokens` tokens (6 per weight per token for the
 * projections and LM head, plus 12*seq*dModel per token per layer for attention scores and mixing).
 */
export function decoderTrainingFlops(c: DecoderConfig, tokens: number): number {
  const headDim = c.dModel / c.heads;
  const matmulWeights = c.layers * (c.dModel * (c.heads + 2 * c.kvHeads) * headDim + c.heads * headDim * c.dModel + 3 * c.dModel * c.ffn) + c.dModel * c.vocab;
  return 6 * matmulWeights * tokens + 12 * c.layers * c.seq * c.dModel * tokens;
}
