export { DatasetError, ImageDecodeError, TokenizerError, WorldError } from './errors.js';
export type { DatasetIssue } from './errors.js';
export {
  CELL,
  COLOURS,
  DIGITS,
  GRID,
  IMAGE_SIZE,
  SHAPES,
  countSubject,
  matchesSubject,
  pluralShape,
  subjectPhrase,
} from './scene.js';
export type { Colour, DigitObject, ObjectAttributes, Scene, Shape, ShapeObject, Subject, WorldObject } from './scene.js';
export { STYLES, decodePng, encodePng, renderScene } from './render.js';
export { CELL_CLASSES, cellClass, cellLabels, randomScene } from './perception.js';
export type { RgbImage, StyleName } from './render.js';
export { COMPOSE_FAMILIES, FAMILIES, IN_DOMAIN_FAMILIES } from './families.js';
export type { FamilyName } from './families.js';
export { generateProblem, problemHash } from './problem.js';
export type { GenerateProblemOptions, Problem } from './problem.js';
export { SPLITS, SPLIT_NAMES, generateSplit, hashPosition } from './splits.js';
export type { GenerateSplitOptions, SplitName, SplitSpec } from './splits.js';
export { checkResponse, checkStep, parseStep } from './checker.js';
export { ANSWER_STYLES, COT_STYLES, goldCot, isAnswerStyle, isCotStyle, withAnswerStyle } from './chains.js';
export type { AnswerStyle, CotStyle } from './chains.js';
export type { CheckOptions, CheckableProblem, CheckedStep, Claim, ResponseCheck, StepLabel } from './checker.js';
export {
  IMAGE_PLACEHOLDER,
  checkableFromRecord,
  decoderByExtension,
  defaultImageDecoder,
  loadDataset,
  pngDecoder,
  toDatasetLine,
  writeDataset,
} from './dataset.js';
export type { DatasetLine, DatasetRecord, ImageDecoder, LoadDatasetOptions, WriteDatasetOptions } from './dataset.js';
export {
  SPECIAL_TOKENS,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  WORLD_WORDS,
  buildWorldTokenizer,
  createTokenizer,
  createWorldTokenizer,
  readTokenizerFiles,
  writeTokenizerFiles,
} from './tokenizer.js';
export type { SpecialToken, TextTokenizer, TokenizerFiles } from './tokenizer.js';
export { summarizeProblems } from './stats.js';
export type { FamilyStats, SummarizeOptions } from './stats.js';
export { chainInconsistency, isConsistentChain } from './consistency.js';
