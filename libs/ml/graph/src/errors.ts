/** A graph could not be built: a shape, dtype or argument mismatch found at build time. */
export class GraphBuildError extends Error {
  override readonly name = 'GraphBuildError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Reverse-mode differentiation could not be applied (a missing VJP, a non-scalar loss, an unknown parameter). */
export class AutodiffError extends Error {
  override readonly name = 'AutodiffError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bytes could not be decoded as an ONNX ModelProto, or a model could not be encoded. */
export class OnnxCodecError extends Error {
  override readonly name = 'OnnxCodecError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
