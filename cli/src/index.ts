/** @mstar/cli as a library: the in-process launcher and run control, for tests and other tools. */
export { connectRunControl } from './control.js';
export type { RunControl } from './control.js';
export { describeEvent } from './describe.js';
export { evaluateServed } from './eval.js';
export type { ServedEvalOptions } from './eval.js';
export { finalReport, runLocal } from './local.js';
export type { LocalRunOptions, LocalRunResult } from './local.js';
export { SUMMARY_COLUMNS, summaryMarkdown, summaryRows, summaryTable } from './table.js';
