export { createTrainer } from './trainer.js';
export type { StepResult, StepTimings, Trainer, TrainerEvent, TrainerOptions, TrainerRuntime } from './trainer.js';
export { decodeCheckpoint, encodeCheckpoint } from './checkpoint.js';
export type { TrainerCheckpoint } from './checkpoint.js';
export { TrainerConfigError, TrainerStateError, TrainingBatchError } from './errors.js';
export { openMatMulPeakProbe } from './peak.js';
export type { MatMulPeakProbe } from './peak.js';
