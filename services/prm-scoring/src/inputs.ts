import { commonV1, type prmV1 } from '@mstar/contracts';
import { splitSteps } from '@mstar/cot';
import { InvalidArgumentError, NotFoundError } from '@mstar/errors';
import type { Aggregation } from '@mstar/metrics';
import { decodeImage, numImageTokens, preprocessImage, stepBoundaries } from '@mstar/models';
import { promptIds, prmResponseIds } from '@mstar/recipes';
import type { LoadedPrm } from './prm-model.js';

/** Request limits that do not depend on the model. */
export interface RequestLimits {
  /** Targets per request; prompts are bounded by it too (a prompt no target uses is wasted work). */
  readonly maxTargets: number;
  readonly maxImageBytes: number;
  readonly maxQuestionChars: number;
}

function invalid(field: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field} ${problem}`, { field });
}

const AGGREGATIONS: ReadonlyMap<commonV1.Aggregation, Aggregation> = new Map([
  [commonV1.Aggregation.MIN, 'min'],
  [commonV1.Aggregation.MEAN, 'mean'],
  [commonV1.Aggregation.LAST, 'last'],
  [commonV1.Aggregation.PRODUCT, 'product'],
]);

/**
 * Checks everything of a ScoreSteps request that does not need the model, and returns its
 * aggregation. AGGREGATION_UNSPECIFIED is refused, as the contract says: a caller that forgot to
 * choose gets an error rather than a silent default.
 */
export function checkScoreRequest(req: prmV1.ScoreStepsRequest, limits: RequestLimits): Aggregation {
  if (req.prompts.length === 0) throw invalid('prompts', 'is empty; at least one prompt is needed');
  if (req.prompts.length > limits.maxTargets) throw invalid('prompts', `holds ${req.prompts.length} prompts, more than the limit ${limits.maxTargets}`);
  req.prompts.forEach((p, i) => {
    if (p.image.length === 0) throw invalid(`prompts[${i}].image`, 'is empty');
    if (p.image.length > limits.maxImageBytes) throw invalid(`prompts[${i}].image`, `is ${p.image.length} bytes, more than the limit ${limits.maxImageBytes}`);
    if (p.question.trim() === '') throw invalid(`prompts[${i}].question`, 'is empty');
    if (p.question.length > limits.maxQuestionChars) {
      throw invalid(`prompts[${i}].question`, `is ${p.question.length} characters, more than the limit ${limits.maxQuestionChars}`);
    }
  });
  if (req.targets.length === 0) throw invalid('targets', 'is empty; at least one response to score is needed');
  if (req.targets.length > limits.maxTargets) throw invalid('targets', `holds ${req.targets.length} responses, more than the limit ${limits.maxTargets}`);
  req.targets.forEach((t, i) => {
    if (t.promptIndex >= req.prompts.length) throw invalid(`targets[${i}].prompt_index`, `is ${t.promptIndex}, but the request has ${req.prompts.length} prompts`);
    if (splitSteps(t.response).length === 0) throw invalid(`targets[${i}].response`, 'has no steps to score (no non-blank text before "# Answer")');
  });
  const how = AGGREGATIONS.get(req.aggregation);
  if (how === undefined) throw invalid('aggregation', `must be MIN, MEAN, LAST or PRODUCT, got ${commonV1.aggregationToJSON(req.aggregation)}`);
  return how;
}

/**
 * The version a request pins, or undefined for "whatever is current". A pin names a PRM of this
 * replica's run; anything else does not exist here.
 */
export function pinnedVersion(ref: commonV1.CheckpointRef | undefined, runId: string | undefined): number | undefined {
  if (ref === undefined) return undefined;
  if (ref.kind !== commonV1.CheckpointKind.PRM && ref.kind !== commonV1.CheckpointKind.UNSPECIFIED) {
    throw invalid('prm.kind', `must be CHECKPOINT_KIND_PRM, got ${commonV1.checkpointKindToJSON(ref.kind)}`);
  }
  if (ref.runId !== '' && runId !== undefined && ref.runId !== runId) {
    throw new NotFoundError(`the PRM of run ${ref.runId} is not served here; this replica serves run ${runId}`);
  }
  return ref.version;
}

/** One response, ready for the scoring graph. */
export interface ScoreRow {
  readonly prm: LoadedPrm;
  /** The prompt ids with ONE image token (`promptIds`); the batch expands it. */
  readonly prompt: readonly number[];
  readonly response: readonly number[];
  /** Number of steps, = stepBoundaries(response).length. */
  readonly steps: number;
  /** pixel_values of the prompt's image [C, H, W], shared by the rows of one prompt. */
  readonly pixels: Float32Array;
  /** Model positions of the row: expanded prompt + response. */
  readonly length: number;
}

/**
 * Decodes every prompt once and tokenizes every target for `prm`, in request order. Fails with an
 * InvalidArgumentError naming the field when an image does not decode or a sequence does not fit
 * in the context.
 */
export async function prepareRows(req: prmV1.ScoreStepsRequest, prm: LoadedPrm): Promise<ScoreRow[]> {
  const { config, tokenizer } = prm;
  const context = config.text.maxPositionEmbeddings;
  const extraImageTokens = numImageTokens(config) - 1;
  const prompts = await Promise.all(
    req.prompts.map(async (p, i) => {
      const image = await decodeImage(p.image, config).catch((cause: unknown) => {
        throw new InvalidArgumentError(`prompts[${i}].image could not be decoded as PNG, JPEG or WebP`, { field: `prompts[${i}].image`, cause });
      });
      const ids = promptIds(tokenizer, p.question);
      const length = ids.length + extraImageTokens;
      if (length >= context) throw invalid(`prompts[${i}].question`, `makes a prompt of ${length} tokens, which leaves no room for a response in the ${context}-token context`);
      return { ids, length, pixels: preprocessImage(image, config) };
    }),
  );
  return req.targets.map((t, i) => {
    const prompt = prompts[t.promptIndex];
    if (prompt === undefined) throw invalid(`targets[${i}].prompt_index`, `is ${t.promptIndex}, but the request has ${prompts.length} prompts`);
    // The same tokens PRM training reads (its labels sit at these step boundaries).
    const response = prmResponseIds(tokenizer, t.response);
    const length = prompt.length + response.length;
    if (length > context) {
      throw invalid(`targets[${i}].response`, `takes ${response.length} tokens; with its prompt (${prompt.length}) that is ${length}, more than the ${context}-token context`);
    }
    const steps = stepBoundaries(response, tokenizer.stepSeparatorId).length;
    const written = splitSteps(t.response).length;
    if (steps !== written) {
      // Only a tokenizer that merges the separator with step text could do this: a server-side fault.
      throw new Error(`the PRM tokenizer gives ${steps} step boundaries for the ${written} steps of targets[${i}].response`);
    }
    return { prm, prompt: prompt.ids, response, steps, pixels: prompt.pixels, length };
  });
}
