import { describeError, InvalidArgumentError } from '@mstar/errors';
import { assertDurableName, covers, normalizeFilters } from './subjects.js';
import { InvalidSubjectError } from './errors.js';
import type {
  BusLogger,
  ConsumerOptions,
  ConsumerStats,
  EventMeta,
  PublishOptions,
  PublishResult,
  RejectionReason,
} from './types.js';

/*
 * The consumer protocol both transports share: decode, run the handler, decide ack / retry /
 * dead-letter, keep the counters. A transport only turns its messages into `Delivery` objects and
 * applies the settlement; it never decides it.
 */

export const DEFAULT_MAX_DELIVER = 5;
export const DEFAULT_BACKOFF_MS: readonly number[] = [500, 2000, 10_000, 30_000];
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
export const DEFAULT_DEAD_LETTER_PREFIX = 'mstar.dlq';

/** Headers on a dead-lettered event; its payload is the original bytes. */
export const DeadLetterHeaders = {
  subject: 'Mstar-Dlq-Subject',
  sequence: 'Mstar-Dlq-Sequence',
  msgId: 'Mstar-Dlq-Msg-Id',
  durable: 'Mstar-Dlq-Durable',
  reason: 'Mstar-Dlq-Reason',
  error: 'Mstar-Dlq-Error',
  deliveryCount: 'Mstar-Dlq-Delivery-Count',
} as const;

export interface DeadLetterInfo {
  subject: string;
  sequence: number;
  msgId: string | undefined;
  durable: string;
  reason: RejectionReason;
  error: string;
  deliveryCount: number;
}

/** Reads the dead-letter headers back; undefined when the event is not a dead letter. */
export function parseDeadLetter(headers: Readonly<Record<string, string>>): DeadLetterInfo | undefined {
  const subject = headers[DeadLetterHeaders.subject];
  const durable = headers[DeadLetterHeaders.durable];
  const reason = headers[DeadLetterHeaders.reason];
  if (subject === undefined || durable === undefined || !isReason(reason)) return undefined;
  return {
    subject,
    durable,
    reason,
    sequence: Number(headers[DeadLetterHeaders.sequence]),
    msgId: headers[DeadLetterHeaders.msgId],
    error: headers[DeadLetterHeaders.error] ?? '',
    deliveryCount: Number(headers[DeadLetterHeaders.deliveryCount]),
  };
}

function isReason(v: string | undefined): v is RejectionReason {
  return v === 'undecodable' || v === 'handler-failed' || v === 'delivery-exhausted';
}

export function deadLetterSubjectFor(prefix: string, durable: string): string {
  return `${prefix}.${durable}`;
}

export interface NormalizedConsumerOptions<T> extends ConsumerOptions<T> {
  filters: string[];
  maxDeliver: number;
  backoffMs: readonly number[];
  deliverFrom: 'all' | 'new';
  deadLetterSubject: string;
}

/** Validates consumer options once, identically for every transport. */
export function normalizeConsumerOptions<T>(
  opts: ConsumerOptions<T>,
  deadLetterPrefix: string,
): NormalizedConsumerOptions<T> {
  assertDurableName(opts.durable);
  const filters = normalizeFilters(opts.subjects);
  const maxDeliver = opts.maxDeliver ?? DEFAULT_MAX_DELIVER;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) {
    throw new InvalidArgumentError(`maxDeliver must be an integer >= 1, got ${maxDeliver}`, { field: 'maxDeliver' });
  }
  const backoffMs = opts.backoffMs ?? DEFAULT_BACKOFF_MS;
  if (backoffMs.length === 0 || backoffMs.some((ms) => !Number.isFinite(ms) || ms < 0)) {
    throw new InvalidArgumentError(`backoffMs must be a non-empty list of delays >= 0, got [${backoffMs.join(', ')}]`, {
      field: 'backoffMs',
    });
  }
  const { inactiveThresholdMs } = opts;
  if (inactiveThresholdMs !== undefined && !(Number.isInteger(inactiveThresholdMs) && inactiveThresholdMs >= 1)) {
    throw new InvalidArgumentError(`inactiveThresholdMs must be an integer >= 1, got ${inactiveThresholdMs}`, { field: 'inactiveThresholdMs' });
  }
  const deadLetterSubject = deadLetterSubjectFor(deadLetterPrefix, opts.durable);
  // A consumer that receives its own dead letters would loop on them forever.
  const looping = filters.find((f) => covers(f, deadLetterSubject));
  if (looping !== undefined) {
    throw new InvalidSubjectError(
      `consumer '${opts.durable}': filter '${looping}' matches its own dead-letter subject '${deadLetterSubject}'`,
      { field: 'subjects' },
    );
  }
  return { ...opts, filters, maxDeliver, backoffMs, deliverFrom: opts.deliverFrom ?? 'all', deadLetterSubject };
}

/** One delivery of one event, as a transport hands it over. Settling it twice is a no-op. */
export interface Delivery {
  meta: EventMeta;
  data: Uint8Array;
  /** Resolves once the broker confirmed the ack. */
  ack(): Promise<void>;
  /** Hand the event back for redelivery after `delayMs`. */
  nak(delayMs: number): void;
  /** Never deliver this event to this durable again. */
  term(reason: string): void;
}

export type Publish = (subject: string, data: Uint8Array, opts: PublishOptions) => Promise<PublishResult>;

const MAX_ERROR_HEADER_CHARS = 1000;

/** What a transport's consumer needs from the processor, independent of the event type. */
export interface DeliverySink {
  process(d: Delivery): Promise<void>;
  stats(): ConsumerStats;
}

export class DeliveryProcessor<T> implements DeliverySink {
  readonly counters: ConsumerStats = {
    delivered: 0,
    acked: 0,
    redelivered: 0,
    handlerErrors: 0,
    deadLettered: 0,
    rejectedUndecodable: 0,
  };

  constructor(
    private readonly opts: NormalizedConsumerOptions<T>,
    private readonly publish: Publish,
    private readonly logger: BusLogger,
  ) {}

  stats(): ConsumerStats {
    return { ...this.counters };
  }

  async process(d: Delivery): Promise<void> {
    const { meta } = d;
    this.counters.delivered++;
    if (meta.deliveryCount > 1) this.counters.redelivered++;

    if (meta.deliveryCount > this.opts.maxDeliver) {
      const error = new Error(
        `event was delivered ${meta.deliveryCount} times without an answer; maxDeliver is ${this.opts.maxDeliver}`,
      );
      await this.reject(d, 'delivery-exhausted', error);
      return;
    }

    let event: T;
    try {
      event = this.opts.decode(d.data, meta);
    } catch (err) {
      await this.reject(d, 'undecodable', err);
      return;
    }

    try {
      await this.opts.handler(event, meta);
    } catch (err) {
      this.counters.handlerErrors++;
      if (meta.deliveryCount >= this.opts.maxDeliver) {
        await this.reject(d, 'handler-failed', err);
      } else {
        this.logger.warn(
          { durable: meta.durable, subject: meta.subject, sequence: meta.sequence, deliveryCount: meta.deliveryCount, err: describeError(err) },
          'event handler failed; will redeliver',
        );
        d.nak(this.backoff(meta.deliveryCount));
      }
      return;
    }

    try {
      await d.ack();
      this.counters.acked++;
    } catch (err) {
      // The broker will redeliver it after ack-wait; at-least-once covers this.
      this.logger.warn(
        { durable: meta.durable, subject: meta.subject, sequence: meta.sequence, err: describeError(err) },
        'ack was not confirmed; the event may be delivered again',
      );
    }
  }

  private backoff(deliveryCount: number): number {
    const { backoffMs } = this.opts;
    return backoffMs[Math.min(deliveryCount, backoffMs.length) - 1] ?? 0;
  }

  private async reject(d: Delivery, reason: RejectionReason, error: unknown): Promise<void> {
    const { meta } = d;
    const headers: Record<string, string> = {
      [DeadLetterHeaders.subject]: meta.subject,
      [DeadLetterHeaders.sequence]: String(meta.sequence),
      [DeadLetterHeaders.durable]: meta.durable,
      [DeadLetterHeaders.reason]: reason,
      // Header values cannot carry line breaks.
      [DeadLetterHeaders.error]: describeError(error).replace(/[\r\n]+/g, ' ').slice(0, MAX_ERROR_HEADER_CHARS),
      [DeadLetterHeaders.deliveryCount]: String(meta.deliveryCount),
    };
    if (meta.msgId !== undefined) headers[DeadLetterHeaders.msgId] = meta.msgId;
    try {
      // Keyed by durable and position so a repeated attempt never stores a second dead letter.
      await this.publish(this.opts.deadLetterSubject, d.data, {
        msgId: `dlq:${meta.durable}:${meta.sequence}`,
        headers,
      });
    } catch (err) {
      this.logger.error(
        { durable: meta.durable, subject: meta.subject, sequence: meta.sequence, reason, err: describeError(err) },
        'dead-letter publish failed; will redeliver',
      );
      d.nak(this.backoff(meta.deliveryCount));
      return;
    }
    d.term(`${reason}: dead-lettered to ${this.opts.deadLetterSubject}`);
    if (reason === 'undecodable') this.counters.rejectedUndecodable++;
    else this.counters.deadLettered++;
    this.logger.warn(
      { durable: meta.durable, subject: meta.subject, sequence: meta.sequence, reason, deadLetterSubject: this.opts.deadLetterSubject, err: describeError(error) },
      'event dead-lettered',
    );
    try {
      this.opts.onReject?.({
        reason,
        durable: meta.durable,
        subject: meta.subject,
        sequence: meta.sequence,
        deliveryCount: meta.deliveryCount,
        error,
        deadLetterSubject: this.opts.deadLetterSubject,
      });
    } catch (err) {
      this.logger.error({ durable: meta.durable, err: describeError(err) }, 'onReject callback threw');
    }
  }
}

/** Default logger: errors only, as one JSON line on stderr, so a bus without a logger still says when it loses work. */
export const stderrLogger: BusLogger = {
  warn: () => undefined,
  error: (fields, msg) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg, ...fields })}\n`);
  },
};
