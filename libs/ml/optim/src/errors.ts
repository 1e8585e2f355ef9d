/** A parameter layout, store or buffer that does not fit what it is used with. */
export class LayoutError extends Error {
  override readonly name = 'LayoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A hyper-parameter or learning-rate schedule that cannot work (negative rate, warm-up past the end, ...). */
export class OptimizerConfigError extends Error {
  override readonly name = 'OptimizerConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Saved optimizer state that does not belong to this optimizer or parameter layout. */
export class OptimizerStateError extends Error {
  override readonly name = 'OptimizerStateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The gradient norm is NaN or infinite: scaling would spread the poison to every parameter. */
export class NonFiniteGradientError extends Error {
  override readonly name = 'NonFiniteGradientError';
  readonly norm: number;
  constructor(norm: number) {
    super(`gradient global norm is ${norm}; refusing to clip or step with a non-finite gradient`);
    this.norm = norm;
  }
}
