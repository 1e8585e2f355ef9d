import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';

/** Trainer options that cannot work together: parameter names that do not match the graph, a bad micro-batch count, ... */
export class TrainerConfigError extends InvalidArgumentError {}

/** A call the trainer cannot serve in its current state (closed, a step already running) or a checkpoint that does not fit it. */
export class TrainerStateError extends FailedPreconditionError {}

/** A micro-batch whose feeds or graph outputs do not fit the training graph. */
export class TrainingBatchError extends InvalidArgumentError {}
