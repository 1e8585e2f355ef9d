import { describe, expect, it } from 'vitest';
import {
  ModelConfigError,
  REFERENCE_CONFIG,
  TINY_CONFIG,
  WeightsError,
  checkWeights,
  initWeights,
  paramCount,
  paramSpecs,
  prmWeightsFromPolicy,
  validateConfig,
  type ModelConfig,
} from '../src/index.js';

describe('configs and parameters', () => {
  it('counts the parameters of TINY and REFERENCE', () => {
    const counts = {
      tinyPolicy: paramCount(TINY_CONFIG, 'policy'),
      tinyPrm: paramCount(TINY_CONFIG, 'prm'),
      referencePolicy: paramCount(REFERENCE_CONFIG, 'policy'),
      referencePrm: paramCount(REFERENCE_CONFIG, 'prm'),
    };
    console.log('parameter counts', counts);
    expect(counts).toEqual({ tinyPolicy: 50_112, tinyPrm: 37_985, referencePolicy: 5_070_208, referencePrm: 4_973_185 });
    // Reference split: vision tower + projector vs language model.
    const vision = paramSpecs(REFERENCE_CONFIG, 'policy')
      .filter((s) => s.name.startsWith('vision_tower.') || s.name.startsWith('multi_modal_projector.'))
      .reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    expect(vision).toBe(522_368);
  });

  it('uses Hugging Face names and [out, in] Linear layouts', () => {
    const shapes = new Map(paramSpecs(REFERENCE_CONFIG, 'policy').map((s) => [s.name, s.shape]));
    expect(shapes.get('model.embed_tokens.weight')).toEqual([380, 256]);
    expect(shapes.get('model.layers.5.self_attn.q_proj.weight')).toEqual([256, 256]);
    expect(shapes.get('model.layers.5.self_attn.k_proj.weight')).toEqual([128, 256]);
    expect(shapes.get('model.layers.0.mlp.gate_proj.weight')).toEqual([688, 256]);
    expect(shapes.get('model.layers.0.mlp.down_proj.weight')).toEqual([256, 688]);
    expect(shapes.get('model.norm.weight')).toEqual([256]);
    expect(shapes.get('lm_head.weight')).toEqual([380, 256]);
    expect(shapes.get('vision_tower.vision_model.embeddings.patch_embedding.weight')).toEqual([128, 3, 8, 8]);
    expect(shapes.get('vision_tower.vision_model.embeddings.position_embedding.weight')).toEqual([16, 128]);
    expect(shapes.get('multi_modal_projector.linear_1.weight')).toEqual([256, 128]);
    expect(shapes.get('multi_modal_projector.linear_2.weight')).toEqual([256, 256]);
    const prm = new Map(paramSpecs(REFERENCE_CONFIG, 'prm').map((s) => [s.name, s.shape]));
    expect(prm.get('score.weight')).toEqual([1, 256]);
    expect(prm.has('lm_head.weight')).toBe(false);
    const tied: ModelConfig = { ...TINY_CONFIG, text: { ...TINY_CONFIG.text, tieWordEmbeddings: true } };
    expect(paramSpecs(tied, 'policy').some((s) => s.name === 'lm_head.weight')).toBe(false);
  });

  it('initialises deterministically from the seed', () => {
    const a = initWeights(TINY_CONFIG, 'policy', 7);
    const b = initWeights(TINY_CONFIG, 'policy', 7);
    const c = initWeights(TINY_CONFIG, 'policy', 8);
    expect([...a.keys()]).toEqual(paramSpecs(TINY_CONFIG, 'policy').map((s) => s.name));
    for (const [name, w] of a) expect(Buffer.from(w.buffer).equals(Buffer.from(b.get(name)!.buffer)), name).toBe(true);
    expect(a.get('model.embed_tokens.weight')).not.toEqual(c.get('model.embed_tokens.weight'));
    expect(a.get('model.norm.weight')!.every((x) => x === 1)).toBe(true);
    expect(a.get('multi_modal_projector.linear_1.bias')!.every((x) => x === 0)).toBe(true);
    const q = a.get('model.layers.0.self_attn.q_proj.weight')!;
    const std = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
    expect(std).toBeGreaterThan(0.017);
    expect(std).toBeLessThan(0.023);
  });

  it('initialises a PRM from a policy: backbone copied, head drawn', () => {
    const policy = initWeights(TINY_CONFIG, 'policy', 1);
    const prm = prmWeightsFromPolicy(TINY_CONFIG, policy, 2);
    expect(prm.get('model.layers.1.mlp.up_proj.weight')).toEqual(policy.get('model.layers.1.mlp.up_proj.weight'));
    expect(prm.get('model.layers.1.mlp.up_proj.weight')).not.toBe(policy.get('model.layers.1.mlp.up_proj.weight'));
    expect(prm.has('lm_head.weight')).toBe(false);
    expect(prm.get('score.weight')!.some((x) => x !== 0)).toBe(true);
    checkWeights(TINY_CONFIG, 'prm', prm);
  });

  it('rejects weights that do not fit, naming every parameter', () => {
    const w = initWeights(TINY_CONFIG, 'policy', 1);
    w.delete('model.norm.weight');
    w.set('model.layers.0.mlp.up_proj.weight', new Float32Array(3));
    w.set('extra.weight', new Float32Array(1));
    let err: unknown;
    try {
      checkWeights(TINY_CONFIG, 'policy', w);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WeightsError);
    expect((err as WeightsError).params).toEqual(['extra.weight', 'model.layers.0.mlp.up_proj.weight', 'model.norm.weight']);
    expect((err as Error).message).toMatch(/unknown parameter 'extra.weight'/);
    expect((err as Error).message).toMatch(/missing parameter 'model.norm.weight' \[32\]/);
    expect((err as Error).message).toMatch(/'model.layers.0.mlp.up_proj.weight' has 3 Float32Array elements, the config needs 2048/);
  });

  it('lists every problem of a bad config', () => {
    const bad: ModelConfig = {
      ...TINY_CONFIG,
      vision: { ...TINY_CONFIG.vision, patchSize: 5 },
      text: { ...TINY_CONFIG.text, heads: 3, kvHeads: 2 },
      tokens: { ...TINY_CONFIG.tokens, image: 999 },
    };
    expect(() => validateConfig(bad)).toThrow(ModelConfigError);
    try {
      validateConfig(bad);
    } catch (e) {
      expect((e as ModelConfigError).issues).toEqual([
        'vision.imageSize 32 is not divisible by vision.patchSize 5',
        'text.hiddenSize 32 is not divisible by text.heads 3',
        'text.heads 3 is not divisible by text.kvHeads 2',
        'tokens.image = 999 must be a token id in [0, 380)',
      ]);
    }
  });
});
