/**
 * @mstar/bootstrap: the process entry point every mstar service shares (config, telemetry, NATS,
 * signals), and what the serving replicas share: the checkpoint follower and the model registry.
 */
export { runServiceMain } from './main.js';
export type { BaseServiceConfig, ServiceMainOptions, ServiceResources } from './main.js';
export { followCheckpoints } from './checkpoints.js';
export type { FollowCheckpointsOptions, VersionedRegistry } from './checkpoints.js';
export { createModelRegistry } from './registry.js';
export type { ModelLease, ModelLoader, ModelRef, ModelRegistry, ModelRegistryOptions, Versioned } from './registry.js';
