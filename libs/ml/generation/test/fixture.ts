import { ONNX_FILES, TINY_CONFIG, exportOnnx, initWeights, type ModelConfig } from '@mstar/models';
import { createSession, type Feeds, type Outputs, type Session } from '@mstar/runtime';
import { sessionRunner, type GenerationRunner, type GraphName } from '../src/index.js';

/**
 * An @mstar/models policy with its weights (not norms) scaled by `scale`. Tests use 25: at the init
 * scale (std 0.02) the logits of an untrained model are nearly uniform and attention nearly flat, so
 * a wrong position or mask would barely move a greedy token. Scaled, the output depends strongly
 * on every input.
 */
export function tinyModelFiles(config: ModelConfig = TINY_CONFIG, scale = 25, seed = 42): Map<string, Uint8Array> {
  const weights = initWeights(config, 'policy', seed);
  for (const [name, data] of weights) {
    if (name.endsWith('.weight') && !/norm/.test(name)) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * scale;
  }
  return exportOnnx(config, 'policy', weights);
}

export interface TinyModel {
  readonly config: ModelConfig;
  readonly sessions: { decoder: Session; embed: Session; vision: Session };
  readonly runner: GenerationRunner;
  release(): Promise<void>;
}

export async function loadTinyModel(config: ModelConfig = TINY_CONFIG, options: { scale?: number; intraOpThreads?: number } = {}): Promise<TinyModel> {
  const files = tinyModelFiles(config, options.scale);
  const load = (file: string): Promise<Session> => createSession(files.get(file) as Uint8Array, { device: 'cpu', intraOpThreads: options.intraOpThreads ?? 1 });
  const sessions = { decoder: await load(ONNX_FILES.decoder), embed: await load(ONNX_FILES.embedTokens), vision: await load(ONNX_FILES.visionEncoder) };
  return {
    config,
    sessions,
    runner: sessionRunner(sessions),
    release: async () => {
      for (const s of Object.values(sessions)) await s.release();
    },
  };
}

export interface RecordedCall {
  readonly graph: GraphName;
  /** dims of the main input: inputs_embeds, input_ids or pixel_values. */
  readonly dims: readonly number[];
}

/** Wraps a runner and records every call, with an optional hook that runs after each one. */
export function recordingRunner(inner: GenerationRunner, after?: (call: RecordedCall, calls: readonly RecordedCall[]) => void): GenerationRunner & { calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return {
    calls,
    layout: inner.layout,
    async run(graph: GraphName, feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> {
      const main = feeds['inputs_embeds'] ?? feeds['input_ids'] ?? feeds['pixel_values'];
      const call = { graph, dims: [...(main?.dims ?? [])] };
      const out = await inner.run(graph, feeds, outputNames);
      calls.push(call);
      after?.(call, calls);
      return out;
    },
  };
}

/** Random-looking but fixed prompt ids of the given lengths, avoiding the special tokens 0..4. */
export function textPrompt(length: number, salt: number): number[] {
  return Array.from({ length }, (_, i) => 5 + ((i * 37 + salt * 101 + 13) % 370));
}
