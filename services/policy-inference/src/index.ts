/**
 * @mstar/policy-inference: the policy inference service (batched KV-cache sampling over the
 * worker pool, hot checkpoint reloads) and the typed client other teams call it with.
 */
export { createPolicyClient, DEFAULT_POLICY_CLIENT_OPTIONS, remoteSampler, waitForPolicyVersion } from './client.js';
export type { PolicyClient, PolicyClientOptions, PolicyVersionRef, StreamCallOptions, WaitOptions } from './client.js';
export { loadConfig, policyInferenceConfig } from './config.js';
export type { PolicyInferenceConfig } from './config.js';
export { SERVICE_NAME, startPolicyInference } from './server.js';
export type { RunningPolicyInference, StartPolicyInferenceOptions } from './server.js';
export { createPolicyService } from './service.js';
export type { PolicyServiceDeps } from './service.js';
export { createPoolLoader } from './policy-loader.js';
export type { LoadedPolicy, PolicyLoader } from './policy-loader.js';
export { createScheduler } from './scheduler.js';
export type { Scheduler, SchedulerOptions, WaveJob } from './scheduler.js';
export { checkGenerateRequest, checkGreedyRequest, MAX_TEMPERATURE, pinnedVersion, preparePrompts } from './validation.js';
export type { RequestLimits, SamplingSettings } from './validation.js';
