import { eventSubjectFilter, eventsV1, type commonV1 } from '@mstar/contracts';
import type { Consumer, EventBus } from '@mstar/events';
import type { ModelRegistry, Versioned } from './registry.js';

/** What the follower needs of a serving replica's model registry: its newest version and a loader. */
export type VersionedRegistry = Pick<ModelRegistry<Versioned>, 'current' | 'load'>;

export interface FollowCheckpointsOptions {
  readonly bus: EventBus;
  readonly runId: string;
  readonly kind: commonV1.CheckpointKind;
  /** The service name; the durable is `<service>-<replica id>` ([A-Za-z0-9_-] only). */
  readonly service: string;
  readonly replicaId: string;
  readonly registry: VersionedRegistry;
}

/**
 * How long a replica's durable outlives the replica. Its name carries the replica id (a pod name
 * on Kubernetes), so every replaced pod leaves one behind; the stream forgets it after this long
 * without a consumer. A replica restarted within it resumes where it was; one restarted later
 * replays the run's checkpoint events, which only loads the newest again.
 */
export const FOLLOWER_INACTIVE_THRESHOLD_MS = 60 * 60 * 1000;

/**
 * The CheckpointPublished consumer of an inference replica: loads every checkpoint of `kind` of
 * one run at or above the newest version it holds (a replayed older one would only evict newer
 * versions from the retained set). A failed load throws, so the bus redelivers the event.
 */
export function followCheckpoints(options: FollowCheckpointsOptions): Promise<Consumer> {
  const { registry } = options;
  return options.bus.consume<eventsV1.Event>({
    durable: `${options.service}-${options.replicaId.replace(/[^A-Za-z0-9_-]/g, '-')}`,
    subjects: eventSubjectFilter({ runId: options.runId, kind: 'checkpointPublished' }),
    inactiveThresholdMs: FOLLOWER_INACTIVE_THRESHOLD_MS,
    decode: (data) => eventsV1.Event.decode(data),
    handler: async (event) => {
      if (event.payload?.$case !== 'checkpointPublished') return;
      const checkpoint = event.payload.value.checkpoint;
      const ref = checkpoint?.ref;
      if (checkpoint === undefined || ref === undefined || ref.kind !== options.kind) return;
      const newest = registry.current()?.ref.version;
      if (newest !== undefined && ref.version < newest) return;
      await registry.load({ runId: ref.runId, version: ref.version }, checkpoint.artifactPrefix);
    },
  });
}
