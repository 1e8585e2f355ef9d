/**
 * The event bus contract shared by every implementation. It moves bytes: encoding is the caller's
 * business (a `decode` function per consumer), so the bus never depends on the message schema.
 */

export interface PublishOptions {
  /**
   * De-duplication key. A second publish with the same id inside the bus's duplicate window is
   * dropped and reported as `duplicate: true`, which makes publish retries safe.
   */
  msgId: string;
  /** Extra headers delivered with the event (ASCII names; values without CR/LF). */
  headers?: Readonly<Record<string, string>>;
}

export interface PublishResult {
  /** True when an event with the same `msgId` was already stored inside the duplicate window. */
  duplicate: boolean;
  /** Position of the stored event in the stream (for a duplicate: the original's position). */
  sequence: number;
}

export interface EventMeta {
  subject: string;
  /** Position of the event in the stream; strictly increasing in publish order. */
  sequence: number;
  msgId: string | undefined;
  /** 1 on the first delivery to this durable, 2 on the first redelivery, ... */
  deliveryCount: number;
  redelivered: boolean;
  publishedAt: Date;
  headers: Readonly<Record<string, string>>;
  durable: string;
}

export type RejectionReason =
  /** `decode` threw: the payload can never be handled, so it is not retried. */
  | 'undecodable'
  /** The handler threw on the last of `maxDeliver` attempts. */
  | 'handler-failed'
  /** The event came back more than `maxDeliver` times without an answer (consumers crashed or hung). */
  | 'delivery-exhausted';

export interface Rejection {
  reason: RejectionReason;
  durable: string;
  subject: string;
  sequence: number;
  deliveryCount: number;
  error: unknown;
  /** Where the event was dead-lettered. */
  deadLetterSubject: string;
}

export interface ConsumerOptions<T> {
  /** Durable name ([A-Za-z0-9_-]+): consumers with the same name share one cursor and split the work. */
  durable: string;
  /** Subject filter(s); `*` matches one token, a trailing `>` matches one or more. */
  subjects: string | readonly string[];
  /** Turns bytes into an event. Throwing marks the message as poison: dead-lettered, never retried. */
  decode: (data: Uint8Array, meta: EventMeta) => T;
  /** Resolving acks the event; throwing schedules a redelivery after `backoffMs`. */
  handler: (event: T, meta: EventMeta) => Promise<void>;
  /** Handler attempts per event before it is dead-lettered. Default 5. */
  maxDeliver?: number;
  /** Redelivery delay after the n-th failed attempt is `backoffMs[n-1]` (last entry repeats). Default [500, 2000, 10000, 30000]. */
  backoffMs?: readonly number[];
  /** Where a newly created durable starts: every stored event, or only those published later. Default 'all'. */
  deliverFrom?: 'all' | 'new';
  /** Called after an event was dead-lettered. */
  onReject?: (rejection: Rejection) => void;
  /**
   * Forget the durable (its cursor) once no consumer has been attached to it for this long, as
   * JetStream's `inactive_threshold` does: for durables named per process (a replica id), which
   * would otherwise pile up with every restart. A consumer that comes later starts it anew, from
   * `deliverFrom`. Default: the durable is kept until deleted.
   */
  inactiveThresholdMs?: number;
}

export interface ConsumerStats {
  /** Deliveries received, redeliveries included. */
  delivered: number;
  /** Events whose handler resolved and whose ack was confirmed. */
  acked: number;
  /** Deliveries with `deliveryCount > 1`. */
  redelivered: number;
  /** Handler invocations that threw. */
  handlerErrors: number;
  /** Events dead-lettered after handler failures or exhausted deliveries (undecodable ones excluded). */
  deadLettered: number;
  /** Events dead-lettered because `decode` threw. */
  rejectedUndecodable: number;
}

export interface CloseConsumerOptions {
  /**
   * true (default): stop taking events, let the in-flight handler finish and settle its event.
   * false: stop at once, as a crash would; the in-flight event stays unacked and is redelivered.
   */
  graceful?: boolean;
}

export interface Consumer {
  readonly durable: string;
  stats(): ConsumerStats;
  close(opts?: CloseConsumerOptions): Promise<void>;
}

/**
 * At-least-once, de-duplicated on publish, one event in flight per durable (so events are handled
 * in stream order, each acked before the next is delivered), explicit ack after the handler
 * resolves, redelivery with backoff, dead-lettering of poison and exhausted events.
 */
export interface EventBus {
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishResult>;
  consume<T>(opts: ConsumerOptions<T>): Promise<Consumer>;
  /** The subject a durable's dead letters are published to. */
  deadLetterSubject(durable: string): string;
  /** Closes every consumer gracefully, then the bus. Idempotent. */
  close(): Promise<void>;
}

/** Structural subset of a pino logger, so any pino instance can be passed. */
export interface BusLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}
