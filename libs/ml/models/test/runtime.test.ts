import { createSession, InputValidationError, tensor, type PlainTensor } from '@mstar/runtime';
import { describe, expect, it } from 'vitest';
import { GRAPH_IO, ONNX_FILES, TINY_CONFIG, exportOnnx, initWeights, textHeadDim } from '../src/index.js';

describe('@mstar/runtime runs the exported decoder', () => {
  it('accepts an empty past (prefill) and refuses a KV cache with the wrong head count', async () => {
    const config = TINY_CONFIG;
    const model = exportOnnx(config, 'policy', initWeights(config, 'policy', 1)).get(ONNX_FILES.decoder)!;
    const session = await createSession(model, { device: 'cpu', intraOpThreads: 1 });
    try {
      const { layers, kvHeads, hiddenSize } = config.text;
      const hd = textHeadDim(config);
      const past = (heads: number): Record<string, PlainTensor> => {
        const feeds: Record<string, PlainTensor> = {};
        for (let l = 0; l < layers; l++) {
          feeds[GRAPH_IO.pastKey(l)] = tensor('float32', [2, heads, 0, hd], new Float32Array(0));
          feeds[GRAPH_IO.pastValue(l)] = tensor('float32', [2, heads, 0, hd], new Float32Array(0));
        }
        return feeds;
      };
      const feeds = {
        inputs_embeds: tensor('float32', [2, 3, hiddenSize], new Float32Array(2 * 3 * hiddenSize).fill(0.1)),
        attention_mask: tensor('int64', [2, 3], BigInt64Array.from([0n, 1n, 1n, 1n, 1n, 1n])),
        position_ids: tensor('int64', [2, 3], BigInt64Array.from([1n, 0n, 1n, 0n, 1n, 2n])),
      };
      const out = await session.run({ ...feeds, ...past(kvHeads) });
      expect(out.logits!.dims).toEqual([2, 3, config.text.vocabSize]);
      expect(out[GRAPH_IO.presentValue(layers - 1)]!.dims).toEqual([2, kvHeads, 3, hd]);
      await expect(session.run({ ...feeds, ...past(kvHeads + 1) })).rejects.toThrow(InputValidationError);
    } finally {
      await session.release();
    }
  });
});
