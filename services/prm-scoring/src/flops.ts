import { numImageTokens, paramSpecs, PROJECTOR_PREFIX, VISION_PREFIX, type ModelConfig } from '@mstar/models';

/** Multiply-accumulate weights of the PRM by where they apply: once per image patch, or once per text position. */
function matmulWeights(config: ModelConfig): { perPatch: number; perPosition: number } {
  let perPatch = 0;
  let perPosition = 0;
  for (const spec of paramSpecs(config, 'prm')) {
    // Embedding tables are gathered, not multiplied; norms and biases are elementwise.
    if (spec.shape.length < 2 || spec.name.endsWith('embed_tokens.weight') || spec.name.endsWith('position_embedding.weight')) continue;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.name.startsWith(VISION_PREFIX) || spec.name.startsWith(PROJECTOR_PREFIX)) perPatch += size;
    else perPosition += size;
  }
  return { perPatch, perPosition };
}

/**
 * Forward FLOPs of one PRM scoring row of `positions` model positions (image tokens included, no
 * padding): 2 x weights per patch through the vision tower and projector, 2 x weights per position
 * through the language model and score head, plus attention (Q.K^T and the weighted sum of V, 4 x
 * length x width per position and layer, counting the full square as the graph computes it).
 */
export function prmForwardFlops(config: ModelConfig, positions: number): number {
  const { perPatch, perPosition } = matmulWeights(config);
  const patches = numImageTokens(config);
  const vision = 2 * patches * perPatch + config.vision.layers * 4 * patches * patches * config.vision.hiddenSize;
  const text = 2 * positions * perPosition + config.text.layers * 4 * positions * positions * config.text.hiddenSize;
  return vision + text;
}
