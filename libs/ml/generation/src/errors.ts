import { CancelledError, MstarError, type MstarErrorOptions } from '@mstar/errors';

/** A graph returned something the generation loop cannot use: a missing output, wrong dims or type. */
export class ModelOutputError extends MstarError {
  constructor(message: string, options?: MstarErrorOptions) {
    super('INTERNAL', message, options);
  }
}

/** Logits held NaN or +Infinity: the model is broken, and no token can be chosen from them. */
export class NonFiniteLogitsError extends MstarError {
  readonly index: number;

  constructor(index: number, value: number) {
    super('INTERNAL', `logits[${index}] is ${value}; logits must be finite or -Infinity (masked)`);
    this.index = index;
  }
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class GenerationCancelledError extends CancelledError {}
