import { runV1, type balancerV1, type eventsV1 } from '@mstar/contracts';
import { getRun, isTerminal } from '@mstar/runs';
import { runRecordKey } from '@mstar/runspec';
import type { RunStore } from '@mstar/stores';

/**
 * Fan-out of the run events the balancer's consumers receive to the WatchRun calls of this
 * process. Every event kind has a consumer (see loop.ts), so a watcher sees the events of every
 * service, the balancer's own included, in the order the bus delivers them.
 */
export interface EventHub {
  notify(event: eventsV1.Event): void;
  /** Calls `listener` with every later event of `runId`; returns the unsubscribe function. */
  subscribe(runId: string, listener: (event: eventsV1.Event) => void): () => void;
}

export function createEventHub(): EventHub {
  const listeners = new Map<string, Set<(event: eventsV1.Event) => void>>();
  return {
    notify(event) {
      for (const listener of listeners.get(event.runId) ?? []) listener(event);
    },
    subscribe(runId, listener) {
      const set = listeners.get(runId) ?? new Set();
      set.add(listener);
      listeners.set(runId, set);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(runId) === set) listeners.delete(runId);
      };
    },
  };
}

export interface WatchDeps {
  readonly runStore: RunStore;
  readonly hub: EventHub;
  /**
   * How long a watch stays open after the run record turned terminal without RunFinished having
   * arrived (RunFinished follows the record update; this only bounds a lost one).
   */
  readonly finishGraceMs: number;
}

type Update = { kind: 'record'; run: runV1.Run } | { kind: 'event'; event: eventsV1.Event } | { kind: 'end' } | { kind: 'error'; error: unknown };

/**
 * Streams a run to `write`: the record as it is now, then every change of the record (event
 * unset) and every event of the run (with the record as it is after the event), until the run
 * has ended and its RunFinished was sent. A run that has already ended gets one message. Returns
 * when the stream should end; `signal` (the call's cancellation) stops it early.
 */
export async function watchRun(deps: WatchDeps, runId: string, write: (response: balancerV1.WatchRunResponse) => void, signal: AbortSignal): Promise<void> {
  const first = await getRun(deps.runStore, runId);
  write({ run: first, event: undefined });
  if (isTerminal(first.state)) return;

  const queue: Update[] = [];
  let wake: (() => void) | undefined;
  const push = (update: Update): void => {
    queue.push(update);
    wake?.();
  };
  const stop = new AbortController();
  const onAbort = (): void => push({ kind: 'end' });
  signal.addEventListener('abort', onAbort, { once: true });
  const unsubscribe = deps.hub.subscribe(runId, (event) => push({ kind: 'event', event }));
  void (async () => {
    for await (const change of deps.runStore.watch({ key: runRecordKey(runId) }, { signal: stop.signal })) {
      if (change.value !== undefined) push({ kind: 'record', run: runV1.Run.decode(change.value) });
    }
  })().catch((error: unknown) => {
    if (!stop.signal.aborted) push({ kind: 'error', error });
  });

  const seenEvents = new Set<string>();
  let graceTimer: NodeJS.Timeout | undefined;
  let lastSent = runV1.Run.encode(first).finish();
  const sameAsSent = (run: runV1.Run): boolean => Buffer.compare(runV1.Run.encode(run).finish(), lastSent) === 0;
  const send = (run: runV1.Run, event?: eventsV1.Event): void => {
    lastSent = runV1.Run.encode(run).finish();
    write({ run, event });
    if (isTerminal(run.state) && graceTimer === undefined) graceTimer = setTimeout(() => push({ kind: 'end' }), deps.finishGraceMs);
  };
  try {
    for (;;) {
      const update = queue.shift();
      if (update === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      if (update.kind === 'end' || signal.aborted) return;
      if (update.kind === 'error') throw update.error;
      if (update.kind === 'record') {
        if (!sameAsSent(update.run)) send(update.run);
        continue;
      }
      // A redelivered event reaches the hub again; a watcher sees it once.
      if (seenEvents.has(update.event.eventId)) continue;
      seenEvents.add(update.event.eventId);
      // An event reaches the hub once the record shows its effect (the balancer writes the record
      // before it publishes, and its consumers update the record before they notify), so the
      // record read now is the record after the event.
      send(await getRun(deps.runStore, runId), update.event);
      if (update.event.payload?.$case === 'runFinished') return;
    }
  } finally {
    clearTimeout(graceTimer);
    signal.removeEventListener('abort', onAbort);
    unsubscribe();
    stop.abort();
  }
}
