import { describeError } from '@mstar/errors';
import { DedupeWindow } from './dedupe.js';
import {
  DEFAULT_DEAD_LETTER_PREFIX,
  DEFAULT_DUPLICATE_WINDOW_MS,
  deadLetterSubjectFor,
  DeliveryProcessor,
  normalizeConsumerOptions,
  stderrLogger,
  type Delivery,
  type DeliverySink,
} from './delivery.js';
import { EventBusClosedError } from './errors.js';
import { assertCaptured, covers, normalizeFilters, sameFilters } from './subjects.js';
import type {
  BusLogger,
  CloseConsumerOptions,
  Consumer,
  ConsumerOptions,
  ConsumerStats,
  EventBus,
  PublishOptions,
  PublishResult,
} from './types.js';

export interface InProcessBusOptions {
  /** Subjects the bus stores, like a stream's subjects; publishing elsewhere fails. Default ['>']. */
  subjects?: readonly string[];
  /** How long a msgId is remembered for de-duplication. Default 120000 (JetStream's default). */
  duplicateWindowMs?: number;
  /** Upper bound on remembered msgIds; the oldest are forgotten first. Default 100000. */
  maxDedupeEntries?: number;
  /** Dead letters go to `<prefix>.<durable>`. Default 'mstar.dlq'. */
  deadLetterPrefix?: string;
  logger?: BusLogger;
}

interface StoredEvent {
  sequence: number;
  subject: string;
  data: Uint8Array;
  headers: Readonly<Record<string, string>>;
  msgId: string;
  publishedAt: Date;
}

type Outcome = { kind: 'done' } | { kind: 'retry'; delayMs: number } | { kind: 'abandoned' };

function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}

/**
 * The single-process default: the stream is an in-memory log, each durable a cursor over it. Events
 * are kept for the life of the bus (the run's event volume is small); cursors die with the bus.
 */
export function createInProcessBus(opts: InProcessBusOptions = {}): EventBus {
  return new InProcessBus(opts);
}

class InProcessBus implements EventBus {
  readonly log: StoredEvent[] = [];
  closed = false;
  private readonly dedupe: DedupeWindow;
  private readonly durables = new Map<string, Durable>();
  private readonly storedSubjects: string[];
  private readonly prefix: string;
  readonly logger: BusLogger;

  constructor(opts: InProcessBusOptions) {
    this.prefix = opts.deadLetterPrefix ?? DEFAULT_DEAD_LETTER_PREFIX;
    this.storedSubjects = [...normalizeFilters(opts.subjects ?? ['>']), `${this.prefix}.>`];
    this.dedupe = new DedupeWindow(opts.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS, opts.maxDedupeEntries ?? 100_000);
    this.logger = opts.logger ?? stderrLogger;
  }

  deadLetterSubject(durable: string): string {
    return deadLetterSubjectFor(this.prefix, durable);
  }

  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishResult> {
    // Settled through a promise so that validation errors reject rather than throw, as on JetStream.
    return settle(() => this.store(subject, data, opts));
  }

  private store(subject: string, data: Uint8Array, opts: PublishOptions): PublishResult {
    if (this.closed) throw new EventBusClosedError(`publish to '${subject}'`);
    assertCaptured(subject, this.storedSubjects);
    const original = this.dedupe.lookup(opts.msgId);
    if (original !== undefined) return { duplicate: true, sequence: original };
    const sequence = this.log.length + 1;
    // Copied so that a caller reusing its buffer cannot rewrite history.
    this.log.push({
      sequence,
      subject,
      data: data.slice(),
      headers: { ...opts.headers },
      msgId: opts.msgId,
      publishedAt: new Date(),
    });
    this.dedupe.remember(opts.msgId, sequence);
    for (const d of this.durables.values()) d.wake();
    return { duplicate: false, sequence };
  }

  consume<T>(opts: ConsumerOptions<T>): Promise<Consumer> {
    return settle(() => this.attach(opts));
  }

  private attach<T>(opts: ConsumerOptions<T>): Consumer {
    if (this.closed) throw new EventBusClosedError(`consume as '${opts.durable}'`);
    const normalized = normalizeConsumerOptions(opts, this.prefix);
    const start = normalized.deliverFrom === 'new' ? this.log.length : 0;
    let durable = this.durables.get(normalized.durable);
    if (durable === undefined) {
      durable = new Durable(this, normalized.durable, normalized.filters, start);
      this.durables.set(normalized.durable, durable);
    } else if (durable.expired() || !sameFilters(durable.filters, normalized.filters)) {
      // As on JetStream: a durable left without a consumer past its inactive threshold is gone,
      // and one asked for with other filters is a new durable.
      durable.restart(normalized.filters, start);
    }
    const processor = new DeliveryProcessor(normalized, (s, d, o) => this.publish(s, d, o), this.logger);
    const consumer = new InProcessConsumer(durable, processor);
    durable.attach(consumer, normalized.inactiveThresholdMs);
    return consumer;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.durables.values()].map((d) => d.closeAll()));
  }
}

/**
 * A durable's cursor. It delivers one event at a time (the head: the first un-settled event that
 * matches the filter), round-robin over the attached consumers, and moves past it only once it is
 * acked or terminated, which is what gives per-subject ordering across retries.
 */
class Durable {
  private readonly consumers: InProcessConsumer[] = [];
  private nextConsumer = 0;
  private headSequence: number | undefined;
  private attempts = 0;
  private notBefore = 0;
  private running = false;
  /** Bumped by restart(), so a delivery begun before it settles nothing after it. */
  private generation = 0;
  private wakeUp: (() => void) | undefined;
  /** Set by attach(): the threshold of the consumer attached last, as JetStream's durable config keeps it. */
  private inactiveThresholdMs: number | undefined;
  /** When the last consumer detached; undefined while one is attached. */
  private idleSince: number | undefined;

  constructor(
    private readonly bus: InProcessBus,
    readonly name: string,
    /** Set at creation; restart() replaces them. */
    public filters: string[],
    /** Index into the log of the first event not yet settled. */
    private cursor: number,
  ) {}

  /** Starts over with other filters from `cursor`, dropping the head in progress. */
  restart(filters: string[], cursor: number): void {
    this.filters = filters;
    this.cursor = cursor;
    this.headSequence = undefined;
    this.attempts = 0;
    this.notBefore = 0;
    this.generation++;
    this.wake();
  }

  /** True when no consumer has been attached for longer than the last one's inactiveThresholdMs. */
  expired(): boolean {
    return this.idleSince !== undefined && this.inactiveThresholdMs !== undefined && Date.now() - this.idleSince >= this.inactiveThresholdMs;
  }

  attach(consumer: InProcessConsumer, inactiveThresholdMs: number | undefined): void {
    this.inactiveThresholdMs = inactiveThresholdMs;
    this.idleSince = undefined;
    this.consumers.push(consumer);
    if (!this.running) {
      this.running = true;
      void this.loop();
    }
    this.wake();
  }

  detach(consumer: InProcessConsumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
    if (this.consumers.length === 0) this.idleSince = Date.now();
    this.wake();
  }

  wake(): void {
    this.wakeUp?.();
  }

  closeAll(): Promise<void> {
    return Promise.all([...this.consumers].map((c) => c.close())).then(() => undefined);
  }

  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private head(): StoredEvent | undefined {
    const { log } = this.bus;
    while (this.cursor < log.length) {
      const e = log[this.cursor];
      if (e !== undefined && this.filters.some((f) => covers(f, e.subject))) return e;
      this.cursor++;
    }
    return undefined;
  }

  private async loop(): Promise<void> {
    try {
      while (this.consumers.length > 0 && !this.bus.closed) {
        const head = this.head();
        if (head === undefined) {
          await this.sleep();
          continue;
        }
        if (head.sequence !== this.headSequence) {
          this.headSequence = head.sequence;
          this.attempts = 0;
          this.notBefore = 0;
        }
        const wait = this.notBefore - Date.now();
        if (wait > 0) {
          await this.sleep(wait);
          continue;
        }
        const consumer = this.consumers[this.nextConsumer++ % this.consumers.length];
        if (consumer === undefined) continue;
        this.attempts++;
        const generation = this.generation;
        const outcome = await consumer.deliver(head, this.attempts);
        if (generation !== this.generation) continue;
        if (outcome.kind === 'done') {
          this.cursor = head.sequence; // the log index after the head
          this.headSequence = undefined;
        } else if (outcome.kind === 'retry') {
          this.notBefore = Date.now() + outcome.delayMs;
        }
        // 'abandoned': the head stays, its attempt counted, as after a crash.
      }
    } catch (err) {
      this.bus.logger.error({ durable: this.name, err: describeError(err) }, 'in-process dispatch loop failed');
    } finally {
      // Reset in the same tick as the exit check, so a consumer attaching next restarts the loop.
      this.running = false;
    }
  }
}

class InProcessConsumer implements Consumer {
  private inFlight: Promise<unknown> | undefined;
  private abort: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly durableState: Durable,
    private readonly processor: DeliverySink,
  ) {}

  get durable(): string {
    return this.durableState.name;
  }

  stats(): ConsumerStats {
    return this.processor.stats();
  }

  async deliver(e: StoredEvent, deliveryCount: number): Promise<Outcome> {
    let outcome: Outcome | undefined;
    let abandoned = false;
    const aborted = new Promise<void>((resolve) => (this.abort = resolve));
    const delivery: Delivery = {
      meta: {
        subject: e.subject,
        sequence: e.sequence,
        msgId: e.msgId,
        deliveryCount,
        redelivered: deliveryCount > 1,
        publishedAt: e.publishedAt,
        headers: e.headers,
        durable: this.durableState.name,
      },
      data: e.data.slice(),
      ack: () => {
        if (abandoned) return Promise.reject(new EventBusClosedError(`ack of event ${e.sequence}: consumer closed before the ack`));
        outcome ??= { kind: 'done' };
        return Promise.resolve();
      },
      nak: (delayMs) => {
        if (!abandoned) outcome ??= { kind: 'retry', delayMs };
      },
      term: () => {
        if (!abandoned) outcome ??= { kind: 'done' };
      },
    };
    const run = this.processor.process(delivery);
    this.inFlight = run;
    await Promise.race([run, aborted]);
    this.inFlight = undefined;
    this.abort = undefined;
    if (outcome === undefined) {
      abandoned = true;
      return { kind: 'abandoned' };
    }
    return outcome;
  }

  async close(opts: CloseConsumerOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.durableState.detach(this);
    if (opts.graceful === false) this.abort?.();
    else await this.inFlight;
  }
}
