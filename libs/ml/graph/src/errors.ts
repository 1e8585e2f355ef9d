import { InvalidArgumentError } from '@mstar/errors';

/** A graph could not be built: a shape, dtype or argument mismatch found at build time. */
export class GraphBuildError extends InvalidArgumentError {}

/** Reverse-mode differentiation could not be applied (a missing VJP, a non-scalar loss, an unknown parameter). */
export class AutodiffError extends InvalidArgumentError {}

/** Bytes could not be decoded as an ONNX ModelProto, or a model could not be encoded. */
export class OnnxCodecError extends InvalidArgumentError {}
