import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from '@mstar/safetensors';
import { buildWorldTokenizer } from '@mstar/world';
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FILES,
  CheckpointError,
  CheckpointNotFoundError,
  ONNX_FILES,
  TINY_CONFIG,
  fsCheckpointIO,
  initWeights,
  loadCheckpoint,
  paramSpecs,
  prmWeightsFromPolicy,
  saveCheckpoint,
  storeCheckpointIO,
  type Checkpoint,
  type ModelConfig,
} from '../src/index.js';

/** The parts of config.json the tests read or edit. */
interface ConfigJson {
  model_type: string;
  image_token_index: number;
  mstar: { config: ModelConfig };
  text_config: Record<string, unknown>;
  vision_config: Record<string, unknown>;
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mstar-models-ckpt-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function policyCheckpoint(): Checkpoint {
  return {
    kind: 'policy',
    config: TINY_CONFIG,
    weights: initWeights(TINY_CONFIG, 'policy', 3),
    tokenizer: buildWorldTokenizer(),
    optimizerState: Uint8Array.from([1, 2, 3, 250]),
    metadata: { version: 'v1', step: '120' },
  };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

describe('checkpoints', () => {
  it('save -> load -> save is lossless (byte-identical files)', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    const written = await saveCheckpoint(fsCheckpointIO(a), policyCheckpoint());
    expect(written.sort()).toEqual(
      [
        'config.json',
        'generation_config.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'model.safetensors',
        'optimizer.bin',
        'onnx/vision_encoder.onnx',
        'onnx/embed_tokens.onnx',
        'onnx/decoder_model_merged.onnx',
        'language_model/onnx/model.onnx',
        'language_model/config.json',
        'language_model/generation_config.json',
        'language_model/tokenizer.json',
        'language_model/tokenizer_config.json',
      ].sort(),
    );
    const loaded = await loadCheckpoint(fsCheckpointIO(a));
    const original = policyCheckpoint();
    expect(loaded.kind).toBe('policy');
    expect(loaded.config).toEqual(TINY_CONFIG);
    expect(loaded.metadata).toEqual({ version: 'v1', step: '120' });
    expect(loaded.optimizerState).toEqual(original.optimizerState);
    expect(loaded.tokenizer).toEqual(original.tokenizer);
    for (const [name, w] of original.weights) expect(Buffer.from(loaded.weights.get(name)!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
    await saveCheckpoint(fsCheckpointIO(b), loaded);
    for (const path of written) expect((await readFile(join(b, path))).equals(await readFile(join(a, path))), path).toBe(true);
  });

  it('writes a LLaVA-style config.json and loadable ONNX graphs', async () => {
    const d = await tempDir();
    await saveCheckpoint(fsCheckpointIO(d), policyCheckpoint());
    const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8')) as ConfigJson;
    expect(config.model_type).toBe('llava');
    expect(config.image_token_index).toBe(4);
    expect(config.text_config.model_type).toBe('llama');
    expect(config.text_config.num_key_value_heads).toBe(2);
    expect(config.vision_config.patch_size).toBe(8);
    const lm = JSON.parse(await readFile(join(d, 'language_model/config.json'), 'utf8')) as Record<string, unknown>;
    expect(lm.architectures).toEqual(['LlamaForCausalLM']);
    const decoder = await ort.InferenceSession.create(join(d, 'onnx', ONNX_FILES.decoder));
    expect(decoder.inputNames.slice(0, 4)).toEqual(['inputs_embeds', 'attention_mask', 'position_ids', 'past_key_values.0.key']);
    await decoder.release();
  });

  it('round-trips a PRM checkpoint without the optimizer slot, and skips ONNX on request', async () => {
    const d = await tempDir();
    const weights = prmWeightsFromPolicy(TINY_CONFIG, initWeights(TINY_CONFIG, 'policy', 3), 9);
    const written = await saveCheckpoint(fsCheckpointIO(d), { kind: 'prm', config: TINY_CONFIG, weights, tokenizer: buildWorldTokenizer() }, { onnx: false });
    expect(written.some((p) => p.endsWith('.onnx'))).toBe(false);
    const loaded = await loadCheckpoint(fsCheckpointIO(d), { kind: 'prm' });
    expect(loaded.optimizerState).toBeUndefined();
    expect(loaded.weights.get('score.weight')).toEqual(weights.get('score.weight'));
    const err = await failure(loadCheckpoint(fsCheckpointIO(d), { kind: 'policy' }));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe("checkpoint file 'config.json': holds a prm model, a policy was expected");
    const prmGraphs = await saveCheckpoint(fsCheckpointIO(await tempDir()), loaded);
    expect(prmGraphs.filter((p) => p.endsWith('.onnx')).sort()).toEqual(['onnx/embed_tokens.onnx', 'onnx/prm_scores.onnx', 'onnx/vision_encoder.onnx']);
  });

  it('stores a checkpoint in an artifact store', async () => {
    const blobs = new Map<string, Uint8Array>();
    const store = {
      get: (key: string) => Promise.resolve(blobs.get(key)!),
      put: (key: string, data: Uint8Array) => Promise.resolve(void blobs.set(key, data)),
      exists: (key: string) => Promise.resolve(blobs.has(key)),
    };
    const io = storeCheckpointIO(store, 'runs/r1/policy/v0/');
    await saveCheckpoint(io, policyCheckpoint(), { onnx: false });
    expect([...blobs.keys()]).toContain('runs/r1/policy/v0/model.safetensors');
    const loaded = await loadCheckpoint(io);
    expect(loaded.weights.get('lm_head.weight')).toEqual(policyCheckpoint().weights.get('lm_head.weight'));
    const missing = await failure(loadCheckpoint(storeCheckpointIO(store, 'runs/r1/policy/v9')));
    expect(missing).toBeInstanceOf(CheckpointNotFoundError);
  });

  describe('bad checkpoints fail with errors that name the problem', () => {
    async function saved(): Promise<string> {
      const d = await tempDir();
      await saveCheckpoint(fsCheckpointIO(d), policyCheckpoint(), { onnx: false });
      return d;
    }
    async function editJson(path: string, edit: (j: ConfigJson) => void): Promise<void> {
      const j = JSON.parse(await readFile(path, 'utf8')) as ConfigJson;
      edit(j);
      await writeFile(path, JSON.stringify(j));
    }
    async function writeWeights(d: string, edit: (t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void): Promise<void> {
      const w = initWeights(TINY_CONFIG, 'policy', 3);
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const s of paramSpecs(TINY_CONFIG, 'policy')) tensors[s.name] = { dtype: 'F32', shape: [...s.shape], data: w.get(s.name)! };
      edit(tensors);
      await writeFile(join(d, CHECKPOINT_FILES.weights), serialize(tensors));
    }

    it('missing files', async () => {
      for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'optimizer.bin']) {
        const d = await saved();
        await unlink(join(d, file));
        const err = await failure(loadCheckpoint(fsCheckpointIO(d)));
        expect(err).toBeInstanceOf(CheckpointNotFoundError);
        expect(err.message).toBe(`checkpoint file '${file}' is missing`);
      }
    });

    it('a parameter of the wrong shape', async () => {
      const d = await saved();
      await writeWeights(d, (t) => {
        t['model.layers.1.self_attn.k_proj.weight'] = { dtype: 'F32', shape: [32, 16], data: new Float32Array(512) };
      });
      const err = await failure(loadCheckpoint(fsCheckpointIO(d)));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toContain("parameter 'model.layers.1.self_attn.k_proj.weight' has shape [32, 16], the config needs [16, 32]");
    });

    it('unknown and missing parameters', async () => {
      const d = await saved();
      await writeWeights(d, (t) => {
        delete t['lm_head.weight'];
        t['score.weight'] = { dtype: 'F32', shape: [1, 32], data: new Float32Array(32) };
      });
      const err = await failure(loadCheckpoint(fsCheckpointIO(d)));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toContain("unknown parameter 'score.weight'");
      expect(err.message).toContain("missing parameter 'lm_head.weight' [380, 32]");
    });

    it('a config that does not match the weights', async () => {
      const d = await saved();
      await editJson(join(d, 'config.json'), (j) => {
        j.mstar.config.text.intermediateSize = 96;
        j.text_config.intermediate_size = 96;
      });
      const err = await failure(loadCheckpoint(fsCheckpointIO(d)));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toContain("parameter 'model.layers.0.mlp.gate_proj.weight' has shape [64, 32], the config needs [96, 32]");
    });

    it('Hugging Face fields that disagree with the mstar config', async () => {
      const d = await saved();
      await editJson(join(d, 'config.json'), (j) => {
        j.text_config.num_hidden_layers = 7;
      });
      const err = await failure(loadCheckpoint(fsCheckpointIO(d)));
      expect(err.message).toBe("checkpoint file 'config.json': Hugging Face fields disagree with the mstar config: text_config.num_hidden_layers is 7, expected 2");
    });

    it('an invalid config, unreadable JSON and a corrupt weights file', async () => {
      const d = await saved();
      await editJson(join(d, 'config.json'), (j) => {
        j.mstar.config.text.kvHeads = 3;
      });
      expect((await failure(loadCheckpoint(fsCheckpointIO(d)))).message).toContain('text.heads 4 is not divisible by text.kvHeads 3');
      await writeFile(join(d, 'config.json'), '{ not json');
      expect((await failure(loadCheckpoint(fsCheckpointIO(d)))).message).toBe("checkpoint file 'config.json': is not valid UTF-8 JSON");
      const e = await saved();
      const bytes = await readFile(join(e, 'model.safetensors'));
      await writeFile(join(e, 'model.safetensors'), bytes.subarray(0, bytes.length - 10));
      const err = await failure(loadCheckpoint(fsCheckpointIO(e)));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toMatch(/^checkpoint file 'model.safetensors': is not a valid safetensors file/);
    });

    it('refuses paths outside the checkpoint', async () => {
      const io = fsCheckpointIO(await tempDir());
      await expect(io.read('../etc/passwd')).rejects.toThrow(CheckpointError);
    });
  });
});
