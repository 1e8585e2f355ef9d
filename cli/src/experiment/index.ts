/** `mstar experiment`: named sets of run specs run over seeds, resumable, and their report (summary, table, figures). */
export { DEFAULT_SEEDS, experimentName, loadExperiment, parseExperiment, parseSeedList, runIdOf } from './definition.js';
export type { Experiment, ExperimentRow, RunRow, WarmupRow } from './definition.js';
export { METRICS, meanStd, summarise, sweepPoints } from './aggregate.js';
export type { MeanStd, MetricName, PerIteration, PerSeed, RowSummary, SweepPoint } from './aggregate.js';
export { plotSpecs, renderSvg } from './plots.js';
export { collectResults, tableMarkdown, writeReport } from './report.js';
export type { ExperimentReport } from './report.js';
export { RESULT_FILE, SPEC_FILE, isComplete, readResult, readSelections, runDir, writeResult } from './results.js';
export type { RunResult } from './results.js';
export { planRuns, runExperiment, selectRunRows } from './runner.js';
export type { ExperimentRunOptions, ExperimentRunOutcome, PlannedRun, RunFunction } from './runner.js';
