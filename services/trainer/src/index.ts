/**
 * @mstar/trainer: the single writer of model weights. Trains the warm-up policy on RunStarted,
 * the PRM on PrmDataReady and each self-evolving iteration on DatasetReady (continuous, or
 * restarting from the last or the initial policy), writes the checkpoints to the artifact store
 * and publishes CheckpointPublished; serves training status and checkpoints over gRPC.
 */
export { createTrainerClient, DEFAULT_TRAINER_CLIENT_OPTIONS } from './client.js';
export type { TrainerClient, TrainerClientOptions } from './client.js';
export { loadConfig, trainerConfig } from './config.js';
export type { TrainerConfig } from './config.js';
export { SERVICE_NAME, startTrainer } from './server.js';
export type { RunningTrainer, StartTrainerOptions } from './server.js';
export type { TrainerProgress } from './consumers.js';
export { CHECKPOINT_META_FILE } from './checkpoints.js';
export type { CheckpointMeta, TrainerStage } from './checkpoints.js';
export { iterationStart, scheduleOf, warmupItems, warmupSettings } from './stages.js';
export type { IterationStart } from './stages.js';
