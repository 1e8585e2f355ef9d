import { commonV1, createEvent, eventsV1, eventSubject } from '@mstar/contracts';
import { createInProcessBus, type ConsumerOptions, type EventBus } from '@mstar/events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FOLLOWER_INACTIVE_THRESHOLD_MS, followCheckpoints, type VersionedRegistry } from '../src/checkpoints.js';
import type { ModelRef, Versioned } from '../src/registry.js';

const RUN_ID = 'run-a';

async function publish(bus: EventBus, runId: string, kind: commonV1.CheckpointKind, version: number): Promise<void> {
  const event = createEvent({
    runId,
    source: 'trainer-test',
    payload: {
      $case: 'checkpointPublished',
      value: {
        checkpoint: {
          ref: { runId, kind, version },
          iteration: version,
          artifactPrefix: `runs/${runId}/checkpoints/v${version}`,
          createdAt: new Date(),
          trainingExamples: 0,
          parent: undefined,
          optimizerStep: 0,
        },
      },
    },
  });
  await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
}

/** A registry that records what it was asked to load and, as the real one, reports the newest version loaded as current. */
function recordingRegistry() {
  const loads: [ModelRef, string][] = [];
  let newest: Versioned | undefined;
  const registry: VersionedRegistry = {
    current: () => newest,
    load: (ref, prefix) => {
      loads.push([ref, prefix]);
      if (newest === undefined || ref.version > newest.ref.version) newest = { ref };
      return Promise.resolve(newest);
    },
  };
  return { registry, loads };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('followCheckpoints', () => {
  it('loads the run\'s checkpoints of its kind, newest on, under a per-replica durable the stream forgets once the replica is gone', async () => {
    const inner = createInProcessBus();
    cleanups.push(() => inner.close());
    const asked: ConsumerOptions<unknown>[] = [];
    const bus: EventBus = {
      publish: (s, d, o) => inner.publish(s, d, o),
      consume: (o) => {
        asked.push(o as ConsumerOptions<unknown>);
        return inner.consume(o);
      },
      deadLetterSubject: (d) => inner.deadLetterSubject(d),
      close: () => inner.close(),
    };
    await publish(bus, RUN_ID, commonV1.CheckpointKind.POLICY, 1);
    await publish(bus, RUN_ID, commonV1.CheckpointKind.PRM, 1);
    await publish(bus, 'run-b', commonV1.CheckpointKind.POLICY, 5);
    await publish(bus, RUN_ID, commonV1.CheckpointKind.POLICY, 3);
    await publish(bus, RUN_ID, commonV1.CheckpointKind.POLICY, 2);
    const { registry, loads } = recordingRegistry();
    const consumer = await followCheckpoints({ bus, runId: RUN_ID, kind: commonV1.CheckpointKind.POLICY, service: 'policy-inference', replicaId: 'pod/7.x', registry });
    cleanups.push(() => consumer.close());
    await vi.waitFor(() => expect(consumer.stats().acked).toBe(4), { timeout: 5000 });
    // The PRM's checkpoint is acked and skipped; v2 arrives after v3 and would only evict a newer version.
    expect(loads).toEqual([
      [{ runId: RUN_ID, version: 1 }, `runs/${RUN_ID}/checkpoints/v1`],
      [{ runId: RUN_ID, version: 3 }, `runs/${RUN_ID}/checkpoints/v3`],
    ]);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ durable: 'policy-inference-pod-7-x', inactiveThresholdMs: FOLLOWER_INACTIVE_THRESHOLD_MS });
  });
});
