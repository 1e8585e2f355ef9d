/**
 * @mstar/balancer: run control (start, get, list, watch, cancel) and the M-STAR loop's balancer:
 * it measures every policy checkpoint (greedy accuracy, Pass@K, Reward-Pass@k) and picks each
 * iteration's sampling temperature.
 */
export { balancerConfig, loadConfig } from './config.js';
export type { BalancerConfig } from './config.js';
export { SERVICE_NAME, startBalancer } from './server.js';
export type { RunningBalancer, StartBalancerOptions } from './server.js';
export { createBalancerService } from './service.js';
export type { BalancerServiceDeps } from './service.js';
export { evaluateIteration, isTransient } from './evaluation.js';
export type { BalancerProgress, EvaluationJob, EvaluationSplit, EvaluatorDeps } from './evaluation.js';
export { chooseTemperature, temperaturePlan } from './temperature.js';
export type { TemperaturePlan } from './temperature.js';
export { fitCancelReason, generatedRunId } from './run-control.js';
export { CHECKPOINTS_DURABLE, EVENTS_DURABLE } from './loop.js';
export { createBalancerMetrics } from './metrics.js';
export type { BalancerMetrics, EvaluationOutcome } from './metrics.js';
