import { ModelConfigError } from './errors.js';

/** ViT image encoder (SigLIP-style: no class token, pre-norm blocks, learned position embeddings). */
export interface VisionConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  layerNormEps: number;
  /** Per-channel normalisation applied to [0, 1] pixels: (x - mean) / std. */
  imageMean: readonly number[];
  imageStd: readonly number[];
}

/** Llama-style language model. */
export interface TextConfig {
  vocabSize: number;
  hiddenSize: number;
  layers: number;
  heads: number;
  /** Key/value heads (grouped-query attention); divides `heads`. */
  kvHeads: number;
  /** SwiGLU hidden size. */
  intermediateSize: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  /** lm_head reuses model.embed_tokens.weight (no lm_head.weight parameter). */
  tieWordEmbeddings: boolean;
}

export interface SpecialTokens {
  image: number;
  bos: number;
  eos: number;
  pad: number;
}

/** The whole vision-language model: vision tower -> 2-layer GELU MLP projector -> language model. */
export interface ModelConfig {
  vision: VisionConfig;
  text: TextConfig;
  tokens: SpecialTokens;
}

/** Test-sized model (about 50k parameters) over the world tokenizer's 380 tokens. */
export const TINY_CONFIG: ModelConfig = {
  vision: {
    imageSize: 32,
    patchSize: 8,
    channels: 3,
    hiddenSize: 16,
    layers: 1,
    heads: 2,
    intermediateSize: 32,
    layerNormEps: 1e-6,
    imageMean: [0.5, 0.5, 0.5],
    imageStd: [0.5, 0.5, 0.5],
  },
  text: {
    vocabSize: 380,
    hiddenSize: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediateSize: 64,
    ropeTheta: 10000,
    maxPositionEmbeddings: 128,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
  },
  tokens: { pad: 0, bos: 1, eos: 2, image: 4 },
};

/** The benchmark model (about 5M parameters), sized to train on 2 CPU cores in minutes. */
export const REFERENCE_CONFIG: ModelConfig = {
  vision: {
    imageSize: 32,
    patchSize: 8,
    channels: 3,
    hiddenSize: 128,
    layers: 2,
    heads: 4,
    intermediateSize: 512,
    layerNormEps: 1e-6,
    imageMean: [0.5, 0.5, 0.5],
    imageStd: [0.5, 0.5, 0.5],
  },
  text: {
    vocabSize: 380,
    hiddenSize: 256,
    layers: 6,
    heads: 8,
    kvHeads: 4,
    intermediateSize: 688,
    ropeTheta: 10000,
    maxPositionEmbeddings: 512,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
  },
  tokens: { pad: 0, bos: 1, eos: 2, image: 4 },
};

export function numImageTokens(c: ModelConfig): number {
  return (c.vision.imageSize / c.vision.patchSize) ** 2;
}

export function textHeadDim(c: ModelConfig): number {
  return c.text.hiddenSize / c.text.heads;
}

/** Every problem with a config (empty when valid). */
export function configIssues(c: ModelConfig): string[] {
  const bad: string[] = [];
  const positive = (path: string, v: unknown): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) bad.push(`${path} = ${String(v)} must be a positive integer`);
  };
  const positiveReal = (path: string, v: unknown): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad.push(`${path} = ${String(v)} must be a positive number`);
  };
  const v = c.vision as Partial<VisionConfig> | undefined;
  const t = c.text as Partial<TextConfig> | undefined;
  const k = c.tokens as Partial<SpecialTokens> | undefined;
  if (v === undefined || t === undefined || k === undefined) {
    for (const part of ['vision', 'text', 'tokens'] as const) if (c[part] === undefined) bad.push(`${part} is missing`);
    return bad;
  }
  for (const key of ['imageSize', 'patchSize', 'channels', 'hiddenSize', 'layers', 'heads', 'intermediateSize'] as const) positive(`vision.${key}`, v[key]);
  positiveReal('vision.layerNormEps', v.layerNormEps);
  for (const key of ['imageMean', 'imageStd'] as const) {
    const arr = v[key];
    if (!Array.isArray(arr) || arr.length !== v.channels || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      bad.push(`vision.${key} must hold ${String(v.channels)} finite numbers`);
    }
  }
  if (Array.isArray(v.imageStd) && v.imageStd.some((x) => x === 0)) bad.push('vision.imageStd must not contain 0');
  if (typeof v.imageSize === 'number' && typeof v.patchSize === 'number' && v.imageSize % v.patchSize !== 0) {
    bad.push(`vision.imageSize ${v.imageSize} is not divisible by vision.patchSize ${v.patchSize}`);
  }
  if (typeof v.hiddenSize === 'number' && typeof v.heads === 'number' && v.hiddenSize % v.heads !== 0) {
    bad.push(`vision.hiddenSize ${v.hiddenSize} is not divisible by vision.heads ${v.heads}`);
  }
  for (const key of ['vocabSize', 'hiddenSize', 'layers', 'heads', 'kvHeads', 'intermediateSize', 'maxPositionEmbeddings'] as const) positive(`text.${key}`, t[key]);
  positiveReal('text.ropeTheta', t.ropeTheta);
  positiveReal('text.rmsNormEps', t.rmsNormEps);
  if (typeof t.tieWordEmbeddings !== 'boolean') bad.push('text.tieWordEmbeddings must be a boolean');
  if (typeof t.hiddenSize === 'number' && typeof t.heads === 'number') {
    if (t.hiddenSize % t.heads !== 0) bad.push(`text.hiddenSize ${t.hiddenSize} is not divisible by text.heads ${t.heads}`);
    else if ((t.hiddenSize / t.heads) % 2 !== 0) bad.push(`text head dim ${t.hiddenSize / t.heads} must be even for rotary embeddings`);
  }
  if (typeof t.heads === 'number' && typeof t.kvHeads === 'number' && t.heads % t.kvHeads !== 0) {
    bad.push(`text.heads ${t.heads} is not divisible by text.kvHeads ${t.kvHeads}`);
  }
  for (const key of ['image', 'bos', 'eos', 'pad'] as const) {
    const id = k[key];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || (typeof t.vocabSize === 'number' && id >= t.vocabSize)) {
      bad.push(`tokens.${key} = ${String(id)} must be a token id in [0, ${String(t.vocabSize)})`);
    }
  }
  return bad;
}

/** Throws a `ModelConfigError` listing every problem. */
export function validateConfig(c: ModelConfig): ModelConfig {
  const issues = configIssues(c);
  if (issues.length > 0) throw new ModelConfigError(issues);
  return c;
}
