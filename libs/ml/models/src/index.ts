export { REFERENCE_CONFIG, TINY_CONFIG, configIssues, numImageTokens, textHeadDim, validateConfig } from './config.js';
export type { ModelConfig, SpecialTokens, TextConfig, VisionConfig } from './config.js';
export { CheckpointError, CheckpointNotFoundError, ModelConfigError, ModelInputError, WeightsError } from './errors.js';
export { PROJECTOR_PREFIX, VISION_PREFIX, checkWeights, initWeights, paramCount, paramSpecs, prmWeightsFromPolicy } from './params.js';
export type { ModelKind, ModelWeights, ParamSpec } from './params.js';
export {
  GRAPH_IO,
  ONNX_FILES,
  buildDecoderGraph,
  buildEmbedTokensGraph,
  buildPolicyForwardGraph,
  buildPolicyTrainingGraph,
  buildPrmScoringGraph,
  buildPrmTrainingGraph,
  buildVisionEncoderGraph,
  buildVisionPretrainingGraph,
  exportOnnx,
} from './graphs.js';
export type { ModelTrainingGraph } from './graphs.js';
export { buildPrefix, expandImageTokens, mergeImageFeatures, padBatch, positionIdsFromMask } from './prefix.js';
export type { TokenBatch } from './prefix.js';
export { fsCheckpointIO, storeCheckpointIO, subfolderIO } from './io.js';
export type { ArtifactStoreLike, CheckpointIO } from './io.js';
export {
  CHECKPOINT_FILES,
  checkpointConfigJson,
  generationConfigJson,
  llamaConfigJson,
  loadCheckpoint,
  saveCheckpoint,
} from './checkpoint.js';
export type { Checkpoint, TokenizerFiles } from './checkpoint.js';
export { decodeImage, preprocessImage, preprocessImages } from './image.js';
export type { RgbImage } from './image.js';
export { buildPrmBatch, buildSftBatch, stepBoundaries } from './batches.js';
export type { PrmBatch, PrmExample, SftBatch, SftExample } from './batches.js';
