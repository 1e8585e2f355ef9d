import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';

/** A parameter layout, store or buffer that does not fit what it is used with. */
export class LayoutError extends InvalidArgumentError {}

/** A hyper-parameter or learning-rate schedule that cannot work (negative rate, warm-up past the end, ...). */
export class OptimizerConfigError extends InvalidArgumentError {}

/** Saved optimizer state that does not belong to this optimizer or parameter layout. */
export class OptimizerStateError extends FailedPreconditionError {}

/** The gradient norm is NaN or infinite: scaling would spread the poison to every parameter. */
export class NonFiniteGradientError extends InvalidArgumentError {
  readonly norm: number;
  constructor(norm: number) {
    super(`gradient global norm is ${norm}; refusing to clip or step with a non-finite gradient`);
    this.norm = norm;
  }
}
