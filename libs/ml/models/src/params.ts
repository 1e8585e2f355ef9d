import { GraphBuilder, initParams, type ParamInit, type Value } from '@mstar/graph';
import { numImageTokens, textHeadDim, validateConfig, type ModelConfig } from './config.js';
import { WeightsError } from './errors.js';

/** A policy has the language-model head; a PRM replaces it with a scalar `score` head. */
export type ModelKind = 'policy' | 'prm';

/** Weights by Hugging Face parameter name, in Hugging Face layout (Linear weights [out, in]). */
export type ModelWeights = Map<string, Float32Array>;

export interface ParamSpec {
  name: string;
  shape: readonly number[];
  init: ParamInit;
}

export const VISION_PREFIX = 'vision_tower.vision_model.';
export const PROJECTOR_PREFIX = 'multi_modal_projector.';

const ones: ParamInit = { kind: 'ones' };
const zeros: ParamInit = { kind: 'zeros' };
const normal = (std: number): ParamInit => ({ kind: 'normal', std });

/**
 * Every parameter of a model, in a fixed order (the order seeded initialisation draws them in).
 * Names follow LLaVA / SigLIP / Llama in Hugging Face transformers.
 */
export function paramSpecs(config: ModelConfig, kind: ModelKind): ParamSpec[] {
  validateConfig(config);
  const { vision: v, text: t } = config;
  const specs: ParamSpec[] = [];
  const add = (name: string, shape: number[], init: ParamInit): void => {
    specs.push({ name, shape, init });
  };
  const linear = (name: string, out: number, inp: number, std = 0.02, bias = true): void => {
    add(`${name}.weight`, [out, inp], normal(std));
    if (bias) add(`${name}.bias`, [out], zeros);
  };
  const layerNorm = (name: string, size: number): void => {
    add(`${name}.weight`, [size], ones);
    add(`${name}.bias`, [size], zeros);
  };

  const vp = VISION_PREFIX;
  add(`${vp}embeddings.patch_embedding.weight`, [v.hiddenSize, v.channels, v.patchSize, v.patchSize], normal(0.02));
  add(`${vp}embeddings.patch_embedding.bias`, [v.hiddenSize], zeros);
  add(`${vp}embeddings.position_embedding.weight`, [numImageTokens(config), v.hiddenSize], normal(0.02));
  const visionResidualStd = 0.02 / Math.sqrt(2 * v.layers);
  for (let l = 0; l < v.layers; l++) {
    const p = `${vp}encoder.layers.${l}.`;
    layerNorm(`${p}layer_norm1`, v.hiddenSize);
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) linear(`${p}self_attn.${proj}`, v.hiddenSize, v.hiddenSize);
    linear(`${p}self_attn.out_proj`, v.hiddenSize, v.hiddenSize, visionResidualStd);
    layerNorm(`${p}layer_norm2`, v.hiddenSize);
    linear(`${p}mlp.fc1`, v.intermediateSize, v.hiddenSize);
    linear(`${p}mlp.fc2`, v.hiddenSize, v.intermediateSize, visionResidualStd);
  }
  layerNorm(`${vp}post_layernorm`, v.hiddenSize);
  linear(`${PROJECTOR_PREFIX}linear_1`, t.hiddenSize, v.hiddenSize);
  linear(`${PROJECTOR_PREFIX}linear_2`, t.hiddenSize, t.hiddenSize);

  const hd = textHeadDim(config);
  const residualStd = 0.02 / Math.sqrt(2 * t.layers);
  add('model.embed_tokens.weight', [t.vocabSize, t.hiddenSize], normal(0.02));
  for (let l = 0; l < t.layers; l++) {
    const p = `model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [t.hiddenSize], ones);
    linear(`${p}self_attn.q_proj`, t.heads * hd, t.hiddenSize, 0.02, false);
    linear(`${p}self_attn.k_proj`, t.kvHeads * hd, t.hiddenSize, 0.02, false);
    linear(`${p}self_attn.v_proj`, t.kvHeads * hd, t.hiddenSize, 0.02, false);
    linear(`${p}self_attn.o_proj`, t.hiddenSize, t.heads * hd, residualStd, false);
    add(`${p}post_attention_layernorm.weight`, [t.hiddenSize], ones);
    linear(`${p}mlp.gate_proj`, t.intermediateSize, t.hiddenSize, 0.02, false);
    linear(`${p}mlp.up_proj`, t.intermediateSize, t.hiddenSize, 0.02, false);
    linear(`${p}mlp.down_proj`, t.hiddenSize, t.intermediateSize, residualStd, false);
  }
  add('model.norm.weight', [t.hiddenSize], ones);
  if (kind === 'policy') {
    if (!t.tieWordEmbeddings) linear('lm_head', t.vocabSize, t.hiddenSize, 0.02, false);
  } else {
    linear('score', 1, t.hiddenSize);
  }
  return specs;
}

/** Total number of parameters (scalars) of a model. */
export function paramCount(config: ModelConfig, kind: ModelKind): number {
  return paramSpecs(config, kind).reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * The model's parameters as graph params of `g`, declared on first use, so each graph (vision
 * encoder, embeddings, decoder) holds only the weights it reads.
 */
export class ModelParams {
  private readonly values = new Map<string, Value>();
  private readonly specs: Map<string, ParamSpec>;
  constructor(
    readonly g: GraphBuilder,
    specs: readonly ParamSpec[],
  ) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
  }

  get(name: string): Value {
    const known = this.values.get(name);
    if (known !== undefined) return known;
    const spec = this.specs.get(name);
    if (spec === undefined) throw new WeightsError(`parameter '${name}' is not part of this model`, [name]);
    const v = this.g.param(spec.name, spec.shape, { init: spec.init });
    this.values.set(name, v);
    return v;
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }
}

/** Deterministic initial weights: the same config, kind and seed give the same bytes everywhere. */
export function initWeights(config: ModelConfig, kind: ModelKind, seed: number): ModelWeights {
  const g = new GraphBuilder('init');
  const specs = paramSpecs(config, kind);
  const params = new ModelParams(g, specs);
  for (const s of specs) params.get(s.name);
  const out: ModelWeights = new Map();
  for (const [name, data] of initParams(g.params.values(), seed)) out.set(name, data as Float32Array);
  return out;
}

/**
 * A PRM initialised from a policy: every backbone weight is copied (lm_head is dropped) and the
 * score head is drawn from `seed`.
 */
export function prmWeightsFromPolicy(config: ModelConfig, policy: ModelWeights, seed: number): ModelWeights {
  checkWeights(config, 'policy', policy);
  const head = initWeights(config, 'prm', seed);
  const out: ModelWeights = new Map();
  for (const spec of paramSpecs(config, 'prm')) {
    const src = policy.get(spec.name) ?? head.get(spec.name);
    out.set(spec.name, Float32Array.from(src as Float32Array));
  }
  return out;
}

/**
 * Checks that `weights` hold exactly the model's parameters with the right sizes; the error lists
 * every unknown, missing and mis-sized parameter.
 */
export function checkWeights(config: ModelConfig, kind: ModelKind, weights: ReadonlyMap<string, Float32Array>, shapes?: ReadonlyMap<string, readonly number[]>): void {
  const specs = paramSpecs(config, kind);
  const expected = new Map(specs.map((s) => [s.name, s.shape]));
  const problems: string[] = [];
  const names: string[] = [];
  for (const name of weights.keys()) {
    if (!expected.has(name)) {
      problems.push(`unknown parameter '${name}'`);
      names.push(name);
    }
  }
  for (const s of specs) {
    const w = weights.get(s.name);
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (w === undefined) {
      problems.push(`missing parameter '${s.name}' [${s.shape.join(', ')}]`);
      names.push(s.name);
      continue;
    }
    const actualShape = shapes?.get(s.name);
    if (actualShape !== undefined && (actualShape.length !== s.shape.length || actualShape.some((d, i) => d !== s.shape[i]))) {
      problems.push(`parameter '${s.name}' has shape [${actualShape.join(', ')}], the config needs [${s.shape.join(', ')}]`);
      names.push(s.name);
    } else if (!(w instanceof Float32Array) || w.length !== size) {
      problems.push(`parameter '${s.name}' has ${w.length} ${w.constructor.name} elements, the config needs ${size} float32 ([${s.shape.join(', ')}])`);
      names.push(s.name);
    }
  }
  if (problems.length > 0) throw new WeightsError(`weights do not match the ${kind} model: ${problems.join('; ')}`, names);
}
