import { parse, serialize, type SafeTensor } from '@mstar/safetensors';
import { configIssues, numImageTokens, textHeadDim, type ModelConfig } from './config.js';
import { CheckpointError, CheckpointNotFoundError, WeightsError } from './errors.js';
import { exportOnnx, ONNX_FILES } from './graphs.js';
import { subfolderIO, type CheckpointIO } from './io.js';
import { checkWeights, paramSpecs, type ModelKind, type ModelWeights } from './params.js';

/** Hugging Face tokenizer files (the shape @mstar/world's `buildWorldTokenizer()` returns). */
export interface TokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
}

export interface Checkpoint {
  kind: ModelKind;
  config: ModelConfig;
  /** By Hugging Face name, Hugging Face layout. */
  weights: ModelWeights;
  tokenizer: TokenizerFiles;
  /** Opaque optimizer state (e.g. @mstar/optim's serialized Adam moments), stored as is. */
  optimizerState?: Uint8Array;
  /** Free-form string metadata (version, step, parent checkpoint...), kept in model.safetensors' header. */
  metadata?: Record<string, string>;
}

export const CHECKPOINT_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  weights: 'model.safetensors',
  optimizer: 'optimizer.bin',
  onnxDir: 'onnx',
  /** The language model alone, loadable by transformers.js (policy checkpoints). */
  languageModelDir: 'language_model',
} as const;

const FORMAT_VERSION = 1;
const encoder = new TextEncoder();

function jsonBytes(value: unknown): Uint8Array {
  return encoder.encode(`${JSON.stringify(value, null, 2)}\n`);
}

/** config.json of a LlamaForCausalLM with the model's language-model sizes. */
export function llamaConfigJson(config: ModelConfig): Record<string, unknown> {
  const t = config.text;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: t.vocabSize,
    hidden_size: t.hiddenSize,
    intermediate_size: t.intermediateSize,
    num_hidden_layers: t.layers,
    num_attention_heads: t.heads,
    num_key_value_heads: t.kvHeads,
    head_dim: textHeadDim(config),
    hidden_act: 'silu',
    max_position_embeddings: t.maxPositionEmbeddings,
    rms_norm_eps: t.rmsNormEps,
    rope_theta: t.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: t.tieWordEmbeddings,
    bos_token_id: config.tokens.bos,
    eos_token_id: config.tokens.eos,
    pad_token_id: config.tokens.pad,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

/** config.json of the whole model: LLaVA layout, plus the exact mstar config under `mstar`. */
export function checkpointConfigJson(config: ModelConfig, kind: ModelKind): Record<string, unknown> {
  const v = config.vision;
  return {
    architectures: [kind === 'policy' ? 'LlavaForConditionalGeneration' : 'LlavaForProcessRewardModel'],
    model_type: 'llava',
    image_token_index: config.tokens.image,
    image_seq_length: numImageTokens(config),
    projector_hidden_act: 'gelu',
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'full',
    text_config: llamaConfigJson(config),
    vision_config: {
      model_type: 'siglip_vision_model',
      image_size: v.imageSize,
      patch_size: v.patchSize,
      num_channels: v.channels,
      hidden_size: v.hiddenSize,
      num_hidden_layers: v.layers,
      num_attention_heads: v.heads,
      intermediate_size: v.intermediateSize,
      layer_norm_eps: v.layerNormEps,
      // Exact (erf) GELU and no attention-pooling head, unlike SigLIP's released models.
      hidden_act: 'gelu',
      vision_use_head: false,
      image_mean: v.imageMean,
      image_std: v.imageStd,
    },
    ...(kind === 'prm' ? { num_labels: 1, problem_type: 'multi_label_classification' } : {}),
    mstar: { format: FORMAT_VERSION, kind, config },
  };
}

export function generationConfigJson(config: ModelConfig): Record<string, unknown> {
  return {
    bos_token_id: config.tokens.bos,
    eos_token_id: config.tokens.eos,
    pad_token_id: config.tokens.pad,
    do_sample: false,
    max_new_tokens: 128,
  };
}

/**
 * Writes a checkpoint: config.json, generation_config.json, tokenizer files, model.safetensors,
 * optimizer.bin (when given) and, unless `onnx: false`, the inference graphs under onnx/ and (for a
 * policy) the transformers.js language-model folder language_model/. Returns the paths written;
 * config.json is written last, so a checkpoint with a config.json is complete.
 */
export async function saveCheckpoint(io: CheckpointIO, ckpt: Checkpoint, options: { onnx?: boolean } = {}): Promise<string[]> {
  checkWeights(ckpt.config, ckpt.kind, ckpt.weights);
  const written: string[] = [];
  const put = async (target: CheckpointIO, path: string, bytes: Uint8Array, prefix = ''): Promise<void> => {
    await target.write(path, bytes);
    written.push(prefix + path);
  };
  const tensors: Record<string, SafeTensor> = {};
  for (const spec of paramSpecs(ckpt.config, ckpt.kind)) {
    tensors[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: ckpt.weights.get(spec.name) as Float32Array };
  }
  await put(io, CHECKPOINT_FILES.weights, serialize(tensors, { format: 'pt', ...ckpt.metadata }));
  await writeTokenizer(io, ckpt.tokenizer, put);
  await put(io, CHECKPOINT_FILES.generationConfig, jsonBytes(generationConfigJson(ckpt.config)));
  if (ckpt.optimizerState !== undefined) await put(io, CHECKPOINT_FILES.optimizer, ckpt.optimizerState);
  if (options.onnx !== false) {
    const graphs = exportOnnx(ckpt.config, ckpt.kind, ckpt.weights);
    const lm = graphs.get(ONNX_FILES.causalLm);
    graphs.delete(ONNX_FILES.causalLm);
    for (const [file, bytes] of graphs) await put(io, `${CHECKPOINT_FILES.onnxDir}/${file}`, bytes);
    if (lm !== undefined) {
      const dir = CHECKPOINT_FILES.languageModelDir;
      const sub = subfolderIO(io, dir);
      await put(sub, `${CHECKPOINT_FILES.onnxDir}/${ONNX_FILES.causalLm}`, lm, `${dir}/`);
      await writeTokenizer(sub, ckpt.tokenizer, (t, p, b) => put(t, p, b, `${dir}/`));
      await put(sub, CHECKPOINT_FILES.generationConfig, jsonBytes(generationConfigJson(ckpt.config)), `${dir}/`);
      await put(sub, CHECKPOINT_FILES.config, jsonBytes(llamaConfigJson(ckpt.config)), `${dir}/`);
    }
  }
  const config = checkpointConfigJson(ckpt.config, ckpt.kind);
  if (ckpt.optimizerState !== undefined) (config.mstar as Record<string, unknown>).optimizerState = CHECKPOINT_FILES.optimizer;
  await put(io, CHECKPOINT_FILES.config, jsonBytes(config));
  return written;
}

async function writeTokenizer(
  io: CheckpointIO,
  tokenizer: TokenizerFiles,
  put: (io: CheckpointIO, path: string, bytes: Uint8Array) => Promise<void>,
): Promise<void> {
  await put(io, CHECKPOINT_FILES.tokenizer, jsonBytes(tokenizer.tokenizerJson));
  await put(io, CHECKPOINT_FILES.tokenizerConfig, jsonBytes(tokenizer.tokenizerConfig));
}

async function readFile(io: CheckpointIO, path: string): Promise<Uint8Array> {
  if (!(await io.exists(path))) throw new CheckpointNotFoundError(path);
  return io.read(path);
}

async function readJson(io: CheckpointIO, path: string): Promise<Record<string, unknown>> {
  const bytes = await readFile(io, path);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new CheckpointError(path, 'is not valid UTF-8 JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CheckpointError(path, 'must hold a JSON object');
  return value as Record<string, unknown>;
}

/** Differences between two JSON values, as dotted paths. */
function jsonDiff(expected: unknown, actual: unknown, path: string, out: string[]): void {
  if (typeof expected === 'object' && expected !== null && typeof actual === 'object' && actual !== null && Array.isArray(expected) === Array.isArray(actual)) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const k of keys) jsonDiff((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`, out);
  } else if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    out.push(`${path} is ${JSON.stringify(actual) ?? 'missing'}, expected ${JSON.stringify(expected) ?? 'nothing'}`);
  }
}

/**
 * Reads and checks a checkpoint written by `saveCheckpoint`. Fails with `CheckpointNotFoundError`
 * for a missing file and `CheckpointError` (naming the file and the problem) for a bad config, a
 * config.json whose Hugging Face fields disagree with its mstar config, an unreadable weights file,
 * or weights that are unknown, missing, not F32 or shaped differently from the config. The ONNX
 * graphs are not read: they are a function of config and weights (`exportOnnx`).
 */
export async function loadCheckpoint(io: CheckpointIO, options: { kind?: ModelKind } = {}): Promise<Checkpoint> {
  const configPath = CHECKPOINT_FILES.config;
  const json = await readJson(io, configPath);
  const mstar = json.mstar as { format?: unknown; kind?: unknown; config?: unknown; optimizerState?: unknown } | undefined;
  if (typeof mstar !== 'object' || mstar === null) throw new CheckpointError(configPath, "has no 'mstar' section (not written by @mstar/models)");
  if (mstar.format !== FORMAT_VERSION) throw new CheckpointError(configPath, `format ${String(mstar.format)} is not supported (expected ${FORMAT_VERSION})`);
  if (mstar.kind !== 'policy' && mstar.kind !== 'prm') throw new CheckpointError(configPath, `kind ${JSON.stringify(mstar.kind)} must be 'policy' or 'prm'`);
  const kind: ModelKind = mstar.kind;
  if (options.kind !== undefined && options.kind !== kind) throw new CheckpointError(configPath, `holds a ${kind} model, a ${options.kind} was expected`);
  const config = mstar.config as ModelConfig;
  const issues = typeof config === 'object' && config !== null ? configIssues(config) : ['config is missing'];
  if (issues.length > 0) throw new CheckpointError(configPath, `invalid model config: ${issues.join('; ')}`);
  const diffs: string[] = [];
  const { mstar: _own, ...hf } = checkpointConfigJson(config, kind);
  const { mstar: _theirs, ...actualHf } = json;
  jsonDiff(hf, actualHf, '', diffs);
  if (diffs.length > 0) throw new CheckpointError(configPath, `Hugging Face fields disagree with the mstar config: ${diffs.join('; ')}`);

  const weightsPath = CHECKPOINT_FILES.weights;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(await readFile(io, weightsPath));
  } catch (cause) {
    if (cause instanceof CheckpointNotFoundError) throw cause;
    throw new CheckpointError(weightsPath, `is not a valid safetensors file: ${(cause as Error).message}`, { cause });
  }
  const weights: ModelWeights = new Map();
  const shapes = new Map<string, readonly number[]>();
  const notF32: string[] = [];
  for (const [name, t] of Object.entries(parsed.tensors)) {
    if (t.dtype !== 'F32') {
      notF32.push(`${name} is ${t.dtype}`);
      continue;
    }
    // Copy out of the file buffer, so the weights own aligned memory of their own.
    weights.set(name, Float32Array.from(t.data));
    shapes.set(name, t.shape);
  }
  if (notF32.length > 0) throw new CheckpointError(weightsPath, `tensors must be F32: ${notF32.join(', ')}`);
  try {
    checkWeights(config, kind, weights, shapes);
  } catch (cause) {
    if (!(cause instanceof WeightsError)) throw cause;
    throw new CheckpointError(weightsPath, cause.message, { cause });
  }
  const { format: _format, ...metadata } = parsed.metadata;

  const tokenizer: TokenizerFiles = {
    tokenizerJson: await readJson(io, CHECKPOINT_FILES.tokenizer),
    tokenizerConfig: await readJson(io, CHECKPOINT_FILES.tokenizerConfig),
  };
  const ckpt: Checkpoint = { kind, config, weights, tokenizer };
  if (Object.keys(metadata).length > 0) ckpt.metadata = metadata;
  if (mstar.optimizerState !== undefined) ckpt.optimizerState = await readFile(io, CHECKPOINT_FILES.optimizer);
  return ckpt;
}
