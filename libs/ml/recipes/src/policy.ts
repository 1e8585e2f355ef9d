import { generate, sessionRunner } from '@mstar/generation';
import type { GenerationRunner } from '@mstar/generation';
import { ONNX_FILES, exportOnnx, preprocessImage } from '@mstar/models';
import type { ModelConfig, ModelWeights } from '@mstar/models';
import { createSession } from '@mstar/runtime';
import type { Device, Session } from '@mstar/runtime';
import type { TextTokenizer } from '@mstar/world';
import { promptIds } from './items.js';
import type { EvalItem } from './items.js';

/** A policy ready to generate: the three inference graphs in in-thread ONNX Runtime sessions. */
export interface PolicySessions {
  readonly runner: GenerationRunner;
  close(): Promise<void>;
}

export interface OpenPolicyOptions {
  readonly device?: Device;
  /** Default 2: the machine's cores (one generation runs at a time). */
  readonly intraOpThreads?: number;
}

/** Exports the policy's inference graphs with the weights embedded and opens them in this thread. */
export async function openPolicy(config: ModelConfig, weights: ModelWeights, options: OpenPolicyOptions = {}): Promise<PolicySessions> {
  const files = exportOnnx(config, 'policy', weights);
  const sessionOptions = { device: options.device ?? 'cpu', intraOpThreads: options.intraOpThreads ?? 2 } as const;
  const opened: Session[] = [];
  const open = async (file: string): Promise<Session> => {
    const session = await createSession(files.get(file)!, sessionOptions);
    opened.push(session);
    return session;
  };
  try {
    const vision = await open(ONNX_FILES.visionEncoder);
    const embed = await open(ONNX_FILES.embedTokens);
    const decoder = await open(ONNX_FILES.decoder);
    return {
      runner: sessionRunner({ decoder, embed, vision }),
      close: async () => {
        await Promise.all(opened.map((s) => s.release()));
      },
    };
  } catch (error) {
    await Promise.all(opened.map((s) => s.release()));
    throw error;
  }
}

/** One request to a response sampler: K responses for each item at one temperature (0 = greedy). */
export interface SampleRequest {
  readonly items: readonly EvalItem[];
  readonly temperature: number;
  readonly numSamples: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number | string;
  readonly signal?: AbortSignal | undefined;
}

export interface SampledResponse {
  readonly text: string;
  /** Generated tokens, the end token excluded. */
  readonly tokens: number;
  /** True when the response ran into maxNewTokens or the context limit instead of ending. */
  readonly truncated: boolean;
}

/**
 * Whatever produces responses for the harness: `runnerSampler` over a local policy, or anything
 * else that answers the same request (a remote sampler service). responses[item][sample].
 */
export type ResponseSampler = (request: SampleRequest) => Promise<SampledResponse[][]>;

/**
 * A sampler over a generation runner. Prompts carry the item id, so a response depends on the
 * seed, the item and its sample index only, not on how the items are batched.
 */
export function runnerSampler(runner: GenerationRunner, config: ModelConfig, tokenizer: TextTokenizer): ResponseSampler {
  const pixelDims = [config.vision.channels, config.vision.imageSize, config.vision.imageSize];
  return async (request) => {
    const { sequences } = await generate(runner, {
      prompts: request.items.map((item) => ({
        id: item.id,
        inputIds: promptIds(tokenizer, item.question),
        pixelValues: { type: 'float32', dims: pixelDims, data: preprocessImage(item.image, config) },
      })),
      numSamples: request.numSamples,
      temperature: request.temperature,
      topP: request.topP,
      maxNewTokens: request.maxNewTokens,
      seed: request.seed,
      eosId: config.tokens.eos,
      padId: config.tokens.pad,
      imageTokenId: config.tokens.image,
      maxContext: config.text.maxPositionEmbeddings,
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
    });
    return sequences.map((samples) =>
      samples.map((s) => ({ text: tokenizer.decode(s.tokens, { skipSpecialTokens: true }), tokens: s.tokens.length, truncated: s.finishReason !== 'eos' })),
    );
  };
}
