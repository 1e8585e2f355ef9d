import { buildTrainingGraph, GraphBuilder, toModel, type GradientOptions, type TrainingGraph, type Value } from '@mstar/graph';
import { numImageTokens, textHeadDim, validateConfig, type ModelConfig } from './config.js';
import { ModelConfigError } from './errors.js';
import { embedTokens, imageFeatures, languageModel, lmHead, mergeImageFeaturesInGraph, positionIdsInGraph, scoreLogits } from './layers.js';
import { checkWeights, ModelParams, paramSpecs, type ModelKind, type ModelWeights } from './params.js';

/** Graph input and output names (the transformers.js layout for vision-language models). */
export const GRAPH_IO = {
  pixelValues: 'pixel_values',
  imageFeatures: 'image_features',
  inputIds: 'input_ids',
  inputsEmbeds: 'inputs_embeds',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  logits: 'logits',
  scores: 'scores',
  targets: 'targets',
  lossWeights: 'loss_weights',
  loss: 'loss',
  pastKey: (layer: number): string => `past_key_values.${layer}.key`,
  pastValue: (layer: number): string => `past_key_values.${layer}.value`,
  presentKey: (layer: number): string => `present.${layer}.key`,
  presentValue: (layer: number): string => `present.${layer}.value`,
} as const;

/** File names of the inference graphs inside a checkpoint's `onnx/` folder. */
export const ONNX_FILES = {
  visionEncoder: 'vision_encoder.onnx',
  embedTokens: 'embed_tokens.onnx',
  decoder: 'decoder_model_merged.onnx',
  prmScores: 'prm_scores.onnx',
  /** The language model alone, taking input_ids (LlamaForCausalLM layout). */
  causalLm: 'model.onnx',
} as const;

function params(g: GraphBuilder, config: ModelConfig, kind: ModelKind): ModelParams {
  return new ModelParams(g, paramSpecs(config, kind));
}

function pixelInput(g: GraphBuilder, config: ModelConfig): Value {
  const v = config.vision;
  return g.input(GRAPH_IO.pixelValues, 'float32', ['batch', v.channels, v.imageSize, v.imageSize]);
}

/** `vision_encoder.onnx`: pixel_values [batch, C, H, W] -> image_features [batch, patches, text hidden]. */
export function buildVisionEncoderGraph(config: ModelConfig): GraphBuilder {
  validateConfig(config);
  const g = new GraphBuilder('vision_encoder');
  g.output(imageFeatures(g, config, params(g, config, 'policy'), pixelInput(g, config)), GRAPH_IO.imageFeatures);
  return g;
}

/** `embed_tokens.onnx`: input_ids int64 [batch, seq] -> inputs_embeds [batch, seq, hidden]. */
export function buildEmbedTokensGraph(config: ModelConfig): GraphBuilder {
  validateConfig(config);
  const g = new GraphBuilder('embed_tokens');
  const ids = g.input(GRAPH_IO.inputIds, 'int64', ['batch', 'seq']);
  g.output(embedTokens(g, params(g, config, 'policy'), ids), GRAPH_IO.inputsEmbeds);
  return g;
}

/**
 * The KV-cache decoder: `decoder_model_merged.onnx` (input 'embeds': inputs_embeds) or the
 * LlamaForCausalLM `model.onnx` (input 'ids': input_ids). Inputs attention_mask int64 [batch,
 * past+seq], position_ids int64 [batch, seq], past_key_values.N.key/.value [batch, kvHeads, past,
 * headDim]; outputs logits [batch, seq, vocab] and present.N.key/.value [batch, kvHeads, past+seq,
 * headDim]. A past length of 0 (empty tensors) is a prefill.
 */
export function buildDecoderGraph(config: ModelConfig, input: 'embeds' | 'ids' = 'embeds'): GraphBuilder {
  validateConfig(config);
  const t = config.text;
  const g = new GraphBuilder(input === 'embeds' ? 'decoder_model_merged' : 'causal_lm');
  const p = params(g, config, 'policy');
  const embeds =
    input === 'embeds'
      ? g.input(GRAPH_IO.inputsEmbeds, 'float32', ['batch', 'seq', t.hiddenSize])
      : embedTokens(g, p, g.input(GRAPH_IO.inputIds, 'int64', ['batch', 'seq']));
  const attentionMask = g.input(GRAPH_IO.attentionMask, 'int64', ['batch', 'past+seq']);
  const positionIds = g.input(GRAPH_IO.positionIds, 'int64', ['batch', 'seq']);
  const hd = textHeadDim(config);
  const past = Array.from({ length: t.layers }, (_, l) => ({
    key: g.input(GRAPH_IO.pastKey(l), 'float32', ['batch', t.kvHeads, 'past', hd]),
    value: g.input(GRAPH_IO.pastValue(l), 'float32', ['batch', t.kvHeads, 'past', hd]),
  }));
  const out = languageModel(g, config, p, { embeds, attentionMask, positionIds, past });
  g.output(lmHead(g, config, p, out.hidden), GRAPH_IO.logits);
  out.present.forEach((kv, l) => {
    g.output(kv.key, GRAPH_IO.presentKey(l));
    g.output(kv.value, GRAPH_IO.presentValue(l));
  });
  return g;
}

interface FullSequence {
  g: GraphBuilder;
  p: ModelParams;
  hidden: Value;
}

/** Image + token sequence through the whole model, without a cache (training and PRM scoring). */
function fullSequence(name: string, config: ModelConfig, kind: ModelKind, training: boolean): FullSequence {
  validateConfig(config);
  const g = new GraphBuilder(name);
  const p = params(g, config, kind);
  const pixels = pixelInput(g, config);
  const ids = g.input(GRAPH_IO.inputIds, 'int64', ['batch', 'seq']);
  const attentionMask = g.input(GRAPH_IO.attentionMask, 'int64', ['batch', 'seq']);
  const embeds = mergeImageFeaturesInGraph(g, config, ids, embedTokens(g, p, ids), imageFeatures(g, config, p, pixels));
  const positionIds = positionIdsInGraph(g, attentionMask);
  const { hidden } = languageModel(g, config, p, { embeds, attentionMask, positionIds, training });
  return { g, p, hidden };
}

/**
 * `prm_scores.onnx`: pixel_values, input_ids (image tokens expanded), attention_mask -> scores
 * [batch, seq], the PRM's probability that the response is correct so far, read at every position
 * (callers pick the step-boundary positions). Position ids come from the mask, as in training.
 */
export function buildPrmScoringGraph(config: ModelConfig): GraphBuilder {
  const { g, p, hidden } = fullSequence('prm_scores', config, 'prm', false);
  g.output(g.sigmoid(scoreLogits(g, p, hidden)), GRAPH_IO.scores);
  return g;
}

/** Full-sequence policy logits (no cache): the training graph's forward, for checks and evaluation. */
export function buildPolicyForwardGraph(config: ModelConfig): GraphBuilder {
  const { g, p, hidden } = fullSequence('policy_forward', config, 'policy', false);
  g.output(lmHead(g, config, p, hidden), GRAPH_IO.logits);
  return g;
}

export interface ModelTrainingGraph {
  graph: GraphBuilder;
  training: TrainingGraph;
  /** Data inputs besides the params (fed by name), in order. */
  dataInputs: readonly string[];
}

/**
 * Policy SFT: inputs pixel_values, input_ids, attention_mask (int64), targets (int64, the next token
 * at each position; any valid id where the weight is 0) and loss_weights (float, 0 on image,
 * prompt and padding positions); loss = sum(w * CE) / sum(w). Outputs `loss` and `grad.<param>`;
 * serialize with toModel(graph, { params: 'inputs' }).
 */
export function buildPolicyTrainingGraph(config: ModelConfig, options: GradientOptions = {}): ModelTrainingGraph {
  const { g, p, hidden } = fullSequence('policy_train', config, 'policy', true);
  const targets = g.input(GRAPH_IO.targets, 'int64', ['batch', 'seq']);
  const weights = g.input(GRAPH_IO.lossWeights, 'float32', ['batch', 'seq']);
  const loss = g.tokenCrossEntropy(lmHead(g, config, p, hidden), targets, { weights, reduction: 'mean' });
  return {
    graph: g,
    training: buildTrainingGraph(g, { ...options, loss }),
    dataInputs: [GRAPH_IO.pixelValues, GRAPH_IO.inputIds, GRAPH_IO.attentionMask, GRAPH_IO.targets, GRAPH_IO.lossWeights],
  };
}

/**
 * PRM: the same backbone with the scalar head; targets float [batch, seq] in [0, 1] (soft step
 * labels), loss_weights float [batch, seq] (non-zero only at step-boundary positions);
 * loss = sum(w * BCE(sigmoid(z), y)) / sum(w).
 */
export function buildPrmTrainingGraph(config: ModelConfig, options: GradientOptions = {}): ModelTrainingGraph {
  const { g, p, hidden } = fullSequence('prm_train', config, 'prm', true);
  const targets = g.input(GRAPH_IO.targets, 'float32', ['batch', 'seq']);
  const weights = g.input(GRAPH_IO.lossWeights, 'float32', ['batch', 'seq']);
  const loss = g.sigmoidBinaryCrossEntropy(scoreLogits(g, p, hidden), targets, { weights, reduction: 'mean' });
  return {
    graph: g,
    training: buildTrainingGraph(g, { ...options, loss }),
    dataInputs: [GRAPH_IO.pixelValues, GRAPH_IO.inputIds, GRAPH_IO.attentionMask, GRAPH_IO.targets, GRAPH_IO.lossWeights],
  };
}

/** The parameter of the vision pretraining head (not part of the policy: dropped after pretraining). */
const VISION_PRETRAINING_HEAD = 'vision_pretraining_head.weight';

/**
 * Vision-encoder pretraining (what a VLM's vision tower gets before the language model ever sees
 * it): the vision tower and projector, then a linear head classifying every image feature into
 * `classes` (inputs pixel_values, targets int64 [batch, patches], loss_weights float [batch,
 * patches]; loss = sum(w * CE) / sum(w)). Its parameters are the policy's vision and projector
 * weights plus VISION_PRETRAINING_HEAD [classes, text hidden].
 */
export function buildVisionPretrainingGraph(config: ModelConfig, classes: number): ModelTrainingGraph {
  validateConfig(config);
  if (!Number.isInteger(classes) || classes < 2) throw new ModelConfigError([`vision pretraining needs at least 2 classes, got ${classes}`]);
  const g = new GraphBuilder('vision_pretrain');
  const features = imageFeatures(g, config, params(g, config, 'policy'), pixelInput(g, config));
  const head = g.param(VISION_PRETRAINING_HEAD, [classes, config.text.hiddenSize], { init: { kind: 'normal', std: 0.02 } });
  const patches = numImageTokens(config);
  const targets = g.input(GRAPH_IO.targets, 'int64', ['batch', patches]);
  const weights = g.input(GRAPH_IO.lossWeights, 'float32', ['batch', patches]);
  const loss = g.tokenCrossEntropy(g.matmul(features, g.transpose(head, [1, 0])), targets, { weights, reduction: 'mean' });
  return { graph: g, training: buildTrainingGraph(g, { loss }), dataInputs: [GRAPH_IO.pixelValues, GRAPH_IO.targets, GRAPH_IO.lossWeights] };
}

/**
 * The inference graphs of a model with its weights embedded, keyed by file name (ONNX_FILES):
 * a policy gets the vision encoder, embeddings, merged decoder and the text-only model.onnx; a
 * PRM gets the vision encoder, embeddings and prm_scores.onnx.
 */
export function exportOnnx(config: ModelConfig, kind: ModelKind, weights: ModelWeights): Map<string, Uint8Array> {
  checkWeights(config, kind, weights);
  const out = new Map<string, Uint8Array>();
  const emit = (file: string, g: GraphBuilder): void => {
    out.set(file, toModel(g, { weights }));
  };
  emit(ONNX_FILES.visionEncoder, buildVisionEncoderGraph(config));
  emit(ONNX_FILES.embedTokens, buildEmbedTokensGraph(config));
  if (kind === 'policy') {
    emit(ONNX_FILES.decoder, buildDecoderGraph(config, 'embeds'));
    emit(ONNX_FILES.causalLm, buildDecoderGraph(config, 'ids'));
  } else {
    emit(ONNX_FILES.prmScores, buildPrmScoringGraph(config));
  }
  return out;
}
