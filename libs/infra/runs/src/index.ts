/**
 * @mstar/runs: the run record in the run store (`runs.<id>`, a `mstar.run.v1.Run`): read, create,
 * compare-and-set updates, and an AbortSignal that follows the run's cancellation.
 */
export { createRun, findRun, getRun, isTerminal, runAbortSignal, updateRun } from './runs.js';
