export {
  ArtifactNotFoundError,
  InvalidKeyError,
  KeyExistsError,
  RevisionConflictError,
  StoreUnavailableError,
} from './errors.js';
export { assertArtifactKey, assertRunKey } from './keys.js';
export type { RunStore, RunStoreChange, RunStoreEntry, WatchOptions, WatchSelector } from './run-store.js';
export { createInMemoryRunStore } from './in-memory-run-store.js';
export { createNatsRunStore } from './nats-run-store.js';
export type { NatsRunStoreOptions } from './nats-run-store.js';
export type { ArtifactData, ArtifactInfo, ArtifactStore } from './artifact-store.js';
export { createFsArtifactStore } from './fs-artifact-store.js';
export type { FsArtifactStoreOptions } from './fs-artifact-store.js';
export { createNatsArtifactStore } from './nats-artifact-store.js';
export type { NatsArtifactStoreOptions } from './nats-artifact-store.js';
export type { NatsStoreConnectionOptions } from './nats-connection.js';
