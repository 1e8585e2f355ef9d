import { createEvent, eventsV1, eventSubject, type EventPayload, type runV1 } from '@mstar/contracts';
import type { EventBus } from '@mstar/events';

export const SOURCE = 'balancer';

/** Publishes one run event with its de-duplicating msg id; re-publishing the same event is harmless. */
export type Publish = (runId: string, payload: EventPayload) => Promise<void>;

export function createPublisher(bus: EventBus): Publish {
  return async (runId, payload) => {
    const event = createEvent({ runId, payload, source: SOURCE });
    await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
  };
}

/** RunFinished of a run that has ended, from its record. */
export function runFinishedPayload(run: runV1.Run): EventPayload {
  return { $case: 'runFinished', value: { state: run.state, errorMessage: run.errorMessage, summary: run.summary } };
}
