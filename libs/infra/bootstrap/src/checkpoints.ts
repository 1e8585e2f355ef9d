import { eventSubjectFilter, eventsV1, type commonV1 } from '@mstar/contracts';
import type { Consumer, EventBus } from '@mstar/events';

/** What a serving replica's model registry offers the follower: its newest version and a loader. */
export interface VersionedRegistry {
  current(): { readonly ref: { readonly version: number } } | undefined;
  load(ref: { runId: string; version: number }, artifactPrefix: string): Promise<unknown>;
}

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
 * The CheckpointPublished consumer of an inference replica: loads every checkpoint of `kind` of
 * one run at or above the newest version it holds (a replayed older one would only evict newer
 * versions from the retained set). A failed load throws, so the bus redelivers the event.
 */
export function followCheckpoints(options: FollowCheckpointsOptions): Promise<Consumer> {
  const { registry } = options;
  return options.bus.consume<eventsV1.Event>({
    durable: `${options.service}-${options.replicaId.replace(/[^A-Za-z0-9_-]/g, '-')}`,
    subjects: eventSubjectFilter({ runId: options.runId, kind: 'checkpointPublished' }),
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
