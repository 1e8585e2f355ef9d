import { seededRandom } from '@mstar/graph';
import * as ort from 'onnxruntime-node';
import { paramSpecs, type ModelConfig, type ModelKind, type ModelWeights } from '../src/index.js';

/**
 * Weights far from initialisation (std 0.2, norms around 1), so attention, masking and every
 * nonlinearity matter and greedy choices are decisive.
 */
export function randomWeights(config: ModelConfig, kind: ModelKind, seed: number, std = 0.2): ModelWeights {
  const rand = seededRandom(seed);
  const out: ModelWeights = new Map();
  for (const s of paramSpecs(config, kind)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const base = s.init.kind === 'ones' ? 1 : 0;
    out.set(s.name, Float32Array.from({ length: n }, () => base + (2 * rand() - 1) * std * Math.sqrt(3)));
  }
  return out;
}

export function randomPixels(batch: number, config: ModelConfig, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const v = config.vision;
  return Float32Array.from({ length: batch * v.channels * v.imageSize * v.imageSize }, () => 2 * rand() - 1);
}

export async function session(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

export const i64 = (data: BigInt64Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', data, dims);
export const f32 = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);

export async function run(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  return s.run(feeds);
}

/** Largest |a - b| over the positions where `keep` holds. */
export function maxDiff(a: Float32Array, b: Float32Array, rowSize: number, keep: (row: number) => boolean): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (!keep(Math.floor(i / rowSize))) continue;
    worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  }
  return worst;
}
