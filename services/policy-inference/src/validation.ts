import { commonV1, type policyV1 } from '@mstar/contracts';
import { InvalidArgumentError, NotFoundError } from '@mstar/errors';
import type { GenerationPrompt } from '@mstar/generation';
import { decodeImage, numImageTokens, preprocessImage } from '@mstar/models';
import { promptIds } from '@mstar/recipes';
import type { LoadedPolicy } from './policy-loader.js';

/** Request limits that do not depend on the model. */
export interface RequestLimits {
  readonly maxPrompts: number;
  readonly maxSamples: number;
  readonly maxImageBytes: number;
  readonly maxQuestionChars: number;
}

/** The temperature range of the contract. */
export const MAX_TEMPERATURE = 2;

/** Sampling settings of a request, checked. */
export interface SamplingSettings {
  readonly numSamples: number;
  readonly temperature: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
}

function invalid(field: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field} ${problem}`, { field });
}

function checkPromptsShape(prompts: readonly commonV1.Prompt[], limits: RequestLimits): void {
  if (prompts.length === 0) throw invalid('prompts', 'is empty; at least one prompt is needed');
  if (prompts.length > limits.maxPrompts) throw invalid('prompts', `holds ${prompts.length} prompts, more than the limit ${limits.maxPrompts}`);
  prompts.forEach((p, i) => {
    if (p.image.length === 0) throw invalid(`prompts[${i}].image`, 'is empty');
    if (p.image.length > limits.maxImageBytes) throw invalid(`prompts[${i}].image`, `is ${p.image.length} bytes, more than the limit ${limits.maxImageBytes}`);
    if (p.question.trim() === '') throw invalid(`prompts[${i}].question`, 'is empty');
    if (p.question.length > limits.maxQuestionChars) {
      throw invalid(`prompts[${i}].question`, `is ${p.question.length} characters, more than the limit ${limits.maxQuestionChars}`);
    }
    if (p.responsePrefix.length > limits.maxQuestionChars) {
      throw invalid(`prompts[${i}].response_prefix`, `is ${p.responsePrefix.length} characters, more than the limit ${limits.maxQuestionChars}`);
    }
  });
}

function checkMaxNewTokens(maxNewTokens: number): void {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens <= 0) throw invalid('max_new_tokens', `must be at least 1, got ${maxNewTokens}`);
}

/** Checks everything of a Generate request that does not need the model. */
export function checkGenerateRequest(req: policyV1.GenerateRequest, limits: RequestLimits): SamplingSettings {
  checkPromptsShape(req.prompts, limits);
  if (!Number.isInteger(req.numSamples) || req.numSamples <= 0) throw invalid('num_samples', `must be at least 1, got ${req.numSamples}`);
  if (req.numSamples > limits.maxSamples) throw invalid('num_samples', `is ${req.numSamples}, more than the limit ${limits.maxSamples}`);
  if (!Number.isFinite(req.temperature) || req.temperature < 0 || req.temperature > MAX_TEMPERATURE) {
    throw invalid('temperature', `must be a finite number in [0, ${MAX_TEMPERATURE}], got ${req.temperature}`);
  }
  if (!(req.topP > 0 && req.topP <= 1)) throw invalid('top_p', `must be in (0, 1], got ${req.topP}`);
  checkMaxNewTokens(req.maxNewTokens);
  return { numSamples: req.numSamples, temperature: req.temperature, topP: req.topP, maxNewTokens: req.maxNewTokens, seed: req.seed };
}

/** Checks a GenerateGreedy request; greedy is temperature 0, one sample, no nucleus. */
export function checkGreedyRequest(req: policyV1.GenerateGreedyRequest, limits: RequestLimits): SamplingSettings {
  checkPromptsShape(req.prompts, limits);
  checkMaxNewTokens(req.maxNewTokens);
  return { numSamples: 1, temperature: 0, topP: 1, maxNewTokens: req.maxNewTokens, seed: 0 };
}

/**
 * The version a request pins, or undefined for "whatever is current". A pin names a policy of
 * this replica's run; anything else does not exist here.
 */
export function pinnedVersion(ref: commonV1.CheckpointRef | undefined, runId: string | undefined): number | undefined {
  if (ref === undefined) return undefined;
  if (ref.kind !== commonV1.CheckpointKind.POLICY && ref.kind !== commonV1.CheckpointKind.UNSPECIFIED) {
    throw invalid('policy.kind', `must be CHECKPOINT_KIND_POLICY, got ${commonV1.checkpointKindToJSON(ref.kind)}`);
  }
  if (ref.runId !== '' && runId !== undefined && ref.runId !== runId) {
    throw new NotFoundError(`policy of run ${ref.runId} is not served here; this replica serves run ${runId}`);
  }
  return ref.version;
}

/**
 * Decodes and tokenizes the prompts for `policy`. Each prompt's random streams are named by the
 * request seed and its prompt id, so its samples do not depend on what it is batched with.
 */
export async function preparePrompts(
  prompts: readonly commonV1.Prompt[],
  policy: LoadedPolicy,
  settings: SamplingSettings,
): Promise<GenerationPrompt[]> {
  const { config, tokenizer } = policy;
  const context = config.text.maxPositionEmbeddings;
  const pixelDims = [config.vision.channels, config.vision.imageSize, config.vision.imageSize];
  const extraImageTokens = numImageTokens(config) - 1;
  const prepared = await Promise.all(
    prompts.map(async (p, i) => {
      const image = await decodeImage(p.image, config).catch((cause: unknown) => {
        throw new InvalidArgumentError(`prompts[${i}].image could not be decoded as PNG, JPEG or WebP`, { field: `prompts[${i}].image`, cause });
      });
      // A response prefix is part of the context the model continues; its tokens count like the question's.
      const inputIds = [...promptIds(tokenizer, p.question), ...(p.responsePrefix === '' ? [] : tokenizer.encode(p.responsePrefix))];
      const length = inputIds.length + extraImageTokens;
      if (length >= context) {
        const field = p.responsePrefix === '' ? `prompts[${i}].question` : `prompts[${i}].response_prefix`;
        throw invalid(field, `makes a prompt of ${length} tokens, which leaves no room in the ${context}-token context`);
      }
      if (length + settings.maxNewTokens > context) {
        throw invalid('max_new_tokens', `${settings.maxNewTokens} does not fit: prompts[${i}] takes ${length} of the ${context}-token context`);
      }
      const prompt: GenerationPrompt = {
        // The id seeds the sample streams: a prefix gets streams of its own, so the rollouts of
        // two prefixes of one prompt are independent draws.
        id: p.responsePrefix === '' ? `${settings.seed}/${p.promptId}` : `${settings.seed}/${p.promptId}/${p.responsePrefix}`,
        inputIds,
        pixelValues: { type: 'float32', dims: pixelDims, data: preprocessImage(image, config) },
      };
      return prompt;
    }),
  );
  return prepared;
}
