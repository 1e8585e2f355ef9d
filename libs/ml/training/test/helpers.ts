import { buildDecoderTrainingGraph, initParams, seededRandom, toModel } from '@mstar/graph';
import type { DecoderConfig, GraphBuilder, TrainingGraph } from '@mstar/graph';
import { ParamStore } from '@mstar/optim';
import type { Feeds, PlainTensor } from '@mstar/runtime';

export const tinyConfig: DecoderConfig = { vocab: 16, dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 32, seq: 8 };

export interface TinyDecoder {
  graph: GraphBuilder;
  training: TrainingGraph;
  model: Uint8Array;
  params: ParamStore;
}

export function tinyDecoder(config: DecoderConfig = tinyConfig, seed = 7): TinyDecoder {
  const { graph, training } = buildDecoderTrainingGraph(config);
  const weights = initParams(graph.params.values(), seed);
  const tensors = Object.fromEntries([...graph.params].map(([name, p]) => [name, { shape: p.shape, data: weights.get(name)! }]));
  return { graph, training, model: toModel(graph, { params: 'inputs' }), params: ParamStore.fromTensors(tensors) };
}

/**
 * A deterministic decoder micro-batch: `rows` sequences of random tokens with random targets, no padding.
 * Row r starts with token r (mod vocab), so no two rows share a context and a model can fit every target.
 */
export function decoderBatch(config: DecoderConfig, rows: number, seed: number): Feeds {
  const rand = seededRandom(seed);
  const n = rows * config.seq;
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % config.seq === 0 ? (i / config.seq) % config.vocab : Math.floor(rand() * config.vocab)));
  const targets = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * config.vocab)));
  const dims = [rows, config.seq];
  return {
    input_ids: { type: 'int64', dims, data: ids },
    targets: { type: 'int64', dims, data: targets },
    attention_mask: { type: 'float32', dims, data: new Float32Array(n).fill(1) },
    loss_weights: { type: 'float32', dims, data: new Float32Array(n).fill(1) },
  };
}

/** Rows [from, to) of every [batch, seq] feed. */
export function sliceRows(feeds: Feeds, from: number, to: number): Feeds {
  const out: Record<string, PlainTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const seq = t.dims[1]!;
    out[name] = { ...t, dims: [to - from, seq], data: t.data.slice(from * seq, to * seq) } as PlainTensor;
  }
  return out;
}

const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
export const sameBits = (a: ArrayBufferView, b: ArrayBufferView): boolean => bytesOf(a).equals(bytesOf(b));

/** Largest |a - b| relative to the largest |b|. */
export function relativeMaxError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
