/** @mstar/bootstrap: the process entry point every mstar service shares (config, telemetry, NATS, signals). */
export { runServiceMain } from './main.js';
export type { BaseServiceConfig, ServiceMainOptions, ServiceResources } from './main.js';
export { followCheckpoints } from './checkpoints.js';
export type { FollowCheckpointsOptions, VersionedRegistry } from './checkpoints.js';
