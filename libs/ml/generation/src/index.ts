export { GenerationCancelledError, ModelOutputError, NonFiniteLogitsError } from './errors.js';
export {
  argmax,
  expShifted,
  processLogits,
  softmax,
  temperatureProcessor,
  toFloat64Logits,
  topKProcessor,
  topPProcessor,
} from './logits.js';
export type { LogitsProcessor } from './logits.js';
export { drawToken, sample, sampleWith, samplingProcessors } from './sampler.js';
export type { SamplingOptions } from './sampler.js';
export { checkStop, contextLimitCriterion, eosCriterion, maxNewTokensCriterion } from './stopping.js';
export type { FinishReason, SequenceState, StoppingCriterion } from './stopping.js';
export { decoderLayout, poolRunner, sessionRunner } from './runner.js';
export type { DecoderLayout, GenerationRunner, GraphName } from './runner.js';
export type { GenerationPrompt } from './prompts.js';
export { DEFAULT_COMPACT_AT, generate } from './generate.js';
export type { GenerateRequest, GeneratedSequence, GenerationResult, GenerationStats } from './generate.js';
export { benchGenerate } from './bench.js';
export type { BenchOptions, BenchReport, BenchRequest, BenchVariant } from './bench.js';
