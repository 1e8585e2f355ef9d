/**
 * @mstar/data-curation: the data curation service — Monte-Carlo PRM data from the warm-up policy,
 * and each self-evolving iteration's dataset (pool slice, K samples at the selected temperature,
 * exact-match verification, PRM re-ranking, selection), driven by run events, with gRPC queries
 * over the datasets and the pool cursor.
 */
export { dataCurationConfig, loadConfig, SERVICE_NAME } from './config.js';
export type { DataCurationConfig } from './config.js';
export { startDataCuration } from './server.js';
export type { RunningDataCuration, StartDataCurationOptions } from './server.js';
export { createCurationService } from './service.js';
export type { CurationServiceDeps } from './service.js';
export { createCurationWorker, decodeCurationEvent } from './worker.js';
export type { CurationEventKind, CurationWorkerDeps } from './worker.js';
export { buildDataset, needsScores, SCORE_TARGETS_PER_CALL, selectSamples } from './dataset.js';
export type { BuildDatasetOptions, DatasetResult, PrmApi, SampleCandidate } from './dataset.js';
export { buildPrmData, ROLLOUT_BUDGET_STEP, rolloutBudget, stepPrefix } from './prm-data.js';
export type { BuildPrmDataOptions, PrmDataResult } from './prm-data.js';
export type { PolicyApi } from './sampling.js';
export type { CurationProgress } from './progress.js';
export type { CurationMetrics, CurationStage } from './metrics.js';
