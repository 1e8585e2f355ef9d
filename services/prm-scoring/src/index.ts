/**
 * @mstar/prm-scoring: the process-reward-model scoring service (per-step scores of CoT answers in
 * one forward pass per response, batched over the worker pool, hot checkpoint reloads) and the
 * typed client other teams call it with.
 */
export { createPrmClient, DEFAULT_PRM_CLIENT_OPTIONS, prmScorer } from './client.js';
export type { PrmClient, PrmClientOptions, PrmScorerOptions, PrmVersionRef, WaitForVersionOptions } from './client.js';
export { loadConfig, prmScoringConfig } from './config.js';
export type { PrmScoringConfig } from './config.js';
export { SERVICE_NAME, startPrmScoring } from './server.js';
export type { RunningPrmScoring, StartPrmScoringOptions } from './server.js';
export { createPrmService, versionKey } from './service.js';
export type { PrmServiceDeps } from './service.js';
export { createPoolLoader } from './prm-model.js';
export type { LoadedPrm, PrmRunner } from './prm-model.js';
export { createBatcher } from './batcher.js';
export type { Batcher, BatcherOptions } from './batcher.js';
export { checkScoreRequest, pinnedVersion, prepareRows } from './inputs.js';
export type { RequestLimits, ScoreRow } from './inputs.js';
export { createBatchRunner, scoringBatch, stepScores } from './scoring.js';
export type { ScoringBatch } from './scoring.js';
export { createPrmMetrics } from './metrics.js';
export type { BatchStats, PrmMetrics } from './metrics.js';
export { prmForwardFlops } from './flops.js';
