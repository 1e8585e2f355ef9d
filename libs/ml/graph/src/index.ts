export { GraphBuildError, AutodiffError, OnnxCodecError } from './errors.js';
export type { Dim, Shape } from './dims.js';
export { dimEq, formatShape } from './dims.js';
export type { DType, TypedArray } from './tensor.js';
export { allocate, fromNumbers, isFloat, dtypeFromOnnx } from './tensor.js';
export { GraphBuilder, Value, SLICE_TO_END } from './graph.js';
export type { AttrValue, GraphNode, ParamInfo, ParamInit, ConstantInfo, ReduceOptions, TokenLossOptions } from './graph.js';
export { toModel, toModelWithExternalData, saveModel, OPSET_VERSION, IR_VERSION } from './model.js';
export type { ModelOptions, ExternalDataOptions, ModelWithExternalData } from './model.js';
export { encodeModel, decodeModel, AttributeType, TensorDataType } from './onnx-proto.js';
export type {
  ModelMessage,
  GraphMessage,
  NodeMessage,
  AttributeMessage,
  TensorMessage,
  ValueInfoMessage,
  DimensionMessage,
  StringStringEntry,
} from './onnx-proto.js';
export { gradients, buildTrainingGraph, unbroadcast, differentiableOps } from './autodiff.js';
export type { GradientOptions, TrainingGraphOptions, TrainingGraph } from './autodiff.js';
export { initParams, seededRandom } from './init.js';
export { decoderLogits, buildDecoderTrainingGraph, decoderParamCount, decoderTrainingFlops, rotaryTables } from './decoder.js';
export type { DecoderConfig, DecoderInputs, DecoderTrainingGraph } from './decoder.js';
