export { RecipeConfigError } from './errors.js';
export { blankImage, itemFromProblem, itemFromRecord, promptIds, responseIds } from './items.js';
export type { EvalItem, ItemOptions } from './items.js';
export { datasetImageDecoder, loadItems } from './dataset.js';
export type { LoadItemsOptions } from './dataset.js';
export { openPolicy, runnerSampler } from './policy.js';
export type { OpenPolicyOptions, PolicySessions, ResponseSampler, SampleRequest, SampledResponse } from './policy.js';
export { evaluate, isCorrect } from './evaluate.js';
export type {
  EvalProgress,
  EvaluateOptions,
  EvaluationResult,
  FamilyMetrics,
  GenerationCost,
  PolicySource,
  SampleRecord,
  Scorer,
  TemperatureResult,
} from './evaluate.js';
export { sftExamples, sftFeeds, warmup } from './warmup.js';
export type { SftExample, WarmupOptions, WarmupProgress, WarmupResult } from './warmup.js';
export { decodeDatasetRecords, decodePrmData, encodeDatasetRecords, encodePrmData, modelConfigOf, modelSummary, runItems } from './run.js';
export type { PrmTrajectory, RunSplit } from './run.js';
export { sft } from './warmup.js';
export type { FreshOptimizer, SftOptions, SftProgress, SftResult } from './warmup.js';
export { openPrmScorer, prmExamples, prmFeeds, prmLoss, prmResponseIds, trainPrm } from './prm.js';
export type { PrmStepScorer, PrmTrainingExample, PrmTrainOptions } from './prm.js';
export { prmQuality } from './prm-quality.js';
export { keptQuality } from './kept-quality.js';
export type { KeptCount, KeptQuality } from './kept-quality.js';
export { pretrainVision } from './vision.js';
export type { VisionPretrainingOptions, VisionPretrainingResult } from './vision.js';
export type { PrmQuality, ScoredPrompt } from './prm-quality.js';
export { relativeWeightChange, retrainSpread } from './retrain.js';
export type { RetrainOptions, RetrainOrder, RetrainRun, RetrainSpread } from './retrain.js';
