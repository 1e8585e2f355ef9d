import { describeError, InvalidArgumentError } from '@mstar/errors';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  connect,
  headers as natsHeaders,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import {
  DEFAULT_DEAD_LETTER_PREFIX,
  DEFAULT_DUPLICATE_WINDOW_MS,
  deadLetterSubjectFor,
  DeliveryProcessor,
  normalizeConsumerOptions,
  stderrLogger,
  type Delivery,
  type DeliverySink,
  type NormalizedConsumerOptions,
} from './delivery.js';
import { EventBusClosedError, EventBusUnavailableError, InvalidSubjectError, PublishRejectedError } from './errors.js';
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

export interface JetStreamBusOptions {
  /** NATS server URL(s). */
  servers: string | string[];
  stream: {
    name: string;
    /** Subjects stored by the stream. The dead-letter subjects are added to it. */
    subjects: readonly string[];
    /** msgId de-duplication window. Default 120000. */
    duplicateWindowMs?: number;
  };
  /** Dead letters go to `<prefix>.<durable>` (stored in the same stream). Default 'mstar.dlq'. */
  deadLetterPrefix?: string;
  /**
   * How long an unacked delivery waits before the server redelivers it. A running handler keeps
   * its event (the bus reports progress), so this is the time to notice a crashed consumer. Default 30000.
   */
  ackWaitMs?: number;
  /** Total time a publish or consumer creation may spend waiting for the server, retries included. Default 10000. */
  requestTimeoutMs?: number;
  /** First reconnect delay; it doubles per failed attempt up to `reconnectMaxWaitMs`. Default 250. */
  reconnectTimeWaitMs?: number;
  /** Default 5000. */
  reconnectMaxWaitMs?: number;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  logger?: BusLogger;
}

const REQUEST_ATTEMPT_TIMEOUT_MS = 2000;
const RESTART_CONSUME_DELAY_MS = 500;
const NANOS_PER_MS = 1_000_000;

/**
 * The event bus over one JetStream stream: file storage, msgId de-duplication, durable pull
 * consumers with explicit ack and `max_ack_pending: 1` (one event in flight per durable, hence
 * ordering), redelivery with backoff through delayed naks. The connection reconnects forever;
 * consumers resume on their own after a server restart.
 */
export async function createJetStreamBus(opts: JetStreamBusOptions): Promise<EventBus> {
  const prefix = opts.deadLetterPrefix ?? DEFAULT_DEAD_LETTER_PREFIX;
  const userSubjects = normalizeFilters(opts.stream.subjects);
  const dlqFilter = `${prefix}.>`;
  const storedSubjects = userSubjects.some((s) => covers(s, dlqFilter)) ? userSubjects : [...userSubjects, dlqFilter];

  const baseWait = opts.reconnectTimeWaitMs ?? 250;
  const maxWait = opts.reconnectMaxWaitMs ?? 5000;
  let failedReconnects = 0;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.servers,
      name: opts.name ?? 'mstar-events',
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => {
        const delay = Math.min(maxWait, baseWait * 2 ** failedReconnects++);
        return delay + Math.random() * delay * 0.2;
      },
    });
  } catch (err) {
    throw new EventBusUnavailableError(`cannot connect to NATS at ${String(opts.servers)}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: REQUEST_ATTEMPT_TIMEOUT_MS });
    await ensureStream(jsm, opts.stream.name, storedSubjects, opts.stream.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS);
    const bus = new JetStreamBus(nc, jsm, opts, prefix, storedSubjects);
    bus.watchConnection(() => (failedReconnects = 0));
    return bus;
  } catch (err) {
    await nc.close();
    throw err;
  }
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], duplicateWindowMs: number): Promise<void> {
  const wanted = { subjects, duplicate_window: duplicateWindowMs * NANOS_PER_MS };
  try {
    const info = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...info.config, ...wanted });
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    await jsm.streams.add({ name, storage: StorageType.File, ...wanted });
  }
}

function isTransient(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    err instanceof NoRespondersError ||
    (err instanceof RequestError && (err.isNoResponders() || err.cause instanceof TimeoutError))
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class JetStreamBus implements EventBus {
  private readonly js: JetStreamClient;
  private readonly consumers = new Set<JetStreamConsumer>();
  private readonly logger: BusLogger;
  private connected = true;
  private readonly awaitingReconnect = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: JetStreamBusOptions,
    private readonly prefix: string,
    private readonly storedSubjects: readonly string[],
  ) {
    this.js = jetstream(nc, { timeout: REQUEST_ATTEMPT_TIMEOUT_MS });
    this.logger = opts.logger ?? stderrLogger;
  }

  watchConnection(onReconnect: () => void): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          this.logger.warn({ stream: this.opts.stream.name }, 'disconnected from NATS; reconnecting');
        } else if (s.type === 'reconnect') {
          this.connected = true;
          onReconnect();
          for (const wake of [...this.awaitingReconnect]) wake();
        }
      }
    })();
  }

  deadLetterSubject(durable: string): string {
    return deadLetterSubjectFor(this.prefix, durable);
  }

  /** Resolves once connected, or after `ms`, whichever is first. */
  private untilConnected(ms: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.awaitingReconnect.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.awaitingReconnect.add(wake);
    });
  }

  /**
   * Runs a JetStream request until it gets an answer or `timeoutMs` runs out. Only for requests
   * that are safe to repeat (msgId-keyed publishes, idempotent management calls): a request or its
   * reply can be lost across a reconnect, and the server may still be loading its store.
   */
  private async retrying<T>(what: string, timeoutMs: number, request: (attemptTimeoutMs: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      // A request written while disconnected is dropped on reconnect: wait for the connection first.
      await this.untilConnected(deadline - Date.now());
      try {
        return await request(Math.max(1, Math.min(REQUEST_ATTEMPT_TIMEOUT_MS, deadline - Date.now())));
      } catch (err) {
        if (err instanceof ClosedConnectionError || this.closed) {
          throw new EventBusClosedError(what, { cause: err });
        }
        if (!isTransient(err)) throw err;
        if (Date.now() + 50 >= deadline) {
          throw new EventBusUnavailableError(
            `${what} got no answer from JetStream within ${timeoutMs} ms (${attempt} attempts)`,
            { cause: err },
          );
        }
        await sleep(Math.min(50 * 2 ** attempt, 1000, deadline - Date.now()));
      }
    }
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishResult> {
    if (this.closed) throw new EventBusClosedError(`publish to '${subject}'`);
    assertCaptured(subject, this.storedSubjects);
    const hdrs = toNatsHeaders(opts.headers);
    const what = `publish to '${subject}' (msgId ${opts.msgId})`;
    try {
      // The msgId makes a repeated publish harmless.
      const ack = await this.retrying(what, this.opts.requestTimeoutMs ?? 10_000, (timeout) =>
        this.js.publish(subject, data, { msgID: opts.msgId, timeout, ...(hdrs === undefined ? {} : { headers: hdrs }) }),
      );
      return { duplicate: ack.duplicate, sequence: ack.seq };
    } catch (err) {
      if (err instanceof EventBusClosedError || err instanceof EventBusUnavailableError) throw err;
      throw new PublishRejectedError(`JetStream refused the ${what}: ${describeError(err)}`, { cause: err });
    }
  }

  async consume<T>(opts: ConsumerOptions<T>): Promise<Consumer> {
    if (this.closed) throw new EventBusClosedError(`consume as '${opts.durable}'`);
    const normalized = normalizeConsumerOptions(opts, this.prefix);
    const unstored = normalized.filters.find((f) => !this.storedSubjects.some((s) => covers(s, f)));
    if (unstored !== undefined) {
      throw new InvalidSubjectError(
        `consumer '${normalized.durable}': filter '${unstored}' is not within the stream's subjects (${this.storedSubjects.join(', ')})`,
        { field: 'subjects' },
      );
    }
    if (normalized.filters.length > 1 && !serverAtLeast(this.nc.info?.version, 2, 10)) {
      // Servers before 2.10 ignore `filter_subjects` and would deliver the whole stream.
      throw new InvalidArgumentError(
        `consumer '${normalized.durable}': several subject filters need nats-server >= 2.10 (connected to ${this.nc.info?.version})`,
        { field: 'subjects' },
      );
    }
    await this.retrying(`create consumer '${normalized.durable}'`, this.opts.requestTimeoutMs ?? 10_000, () =>
      this.ensureConsumer(normalized),
    );
    const processor = new DeliveryProcessor(normalized, (s, d, o) => this.publish(s, d, o), this.logger);
    const consumer = new JetStreamConsumer(
      this.js,
      this.opts.stream.name,
      normalized.durable,
      processor,
      this.ackWaitMs,
      this.logger,
      serverAtLeast(this.nc.info?.version, 2, 10),
      (c) => this.consumers.delete(c),
    );
    this.consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  private get ackWaitMs(): number {
    return this.opts.ackWaitMs ?? 30_000;
  }

  private async ensureConsumer<T>(o: NormalizedConsumerOptions<T>): Promise<void> {
    const stream = this.opts.stream.name;
    const filter = o.filters.length === 1 ? { filter_subject: o.filters[0] } : { filter_subjects: o.filters };
    const updatable = {
      ack_wait: this.ackWaitMs * NANOS_PER_MS,
      // One more than the handler attempts, so an event whose consumers kept crashing comes back
      // once more and is dead-lettered instead of silently dropped by the server.
      max_deliver: o.maxDeliver + 1,
      // One event in flight per durable: the next is only delivered after this one is settled.
      max_ack_pending: 1,
      // 0: kept until deleted (an update must also be able to take a threshold away).
      inactive_threshold: (o.inactiveThresholdMs ?? 0) * NANOS_PER_MS,
      ...filter,
    };
    let existing: ConsumerConfig | undefined;
    try {
      existing = (await this.jsm.consumers.info(stream, o.durable)).config;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
    }
    if (existing !== undefined) {
      // A server may report one filter either way, and an absent list as empty: an empty list read
      // as "no filters" would re-create, and so rewind, the durable on every start.
      const filters = existing.filter_subjects?.length ? existing.filter_subjects : existing.filter_subject ? [existing.filter_subject] : [];
      if (sameFilters(filters, o.filters)) {
        await this.jsm.consumers.update(stream, o.durable, updatable);
        return;
      }
      // Updating the filter in place would skip the new filter's events already passed and, on
      // nats-server 2.9, deliver later ones only with the next pull request (about 15 s late).
      this.logger.warn({ stream, durable: o.durable, from: filters, to: o.filters }, 'durable re-created for new subject filters');
      await this.jsm.consumers.delete(stream, o.durable);
    }
    await this.jsm.consumers.add(stream, {
      durable_name: o.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: o.deliverFrom === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      ...updatable,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Still open while consumers finish: their in-flight handlers may need to dead-letter.
    await Promise.all([...this.consumers].map((c) => c.close()));
    this.closed = true;
    await this.nc.close();
  }
}

function serverAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const [ma = 0, mi = 0] = (version ?? '0.0').split('.').map(Number);
  return ma > major || (ma === major && mi >= minor);
}

function toNatsHeaders(h: Readonly<Record<string, string>> | undefined): MsgHdrs | undefined {
  if (h === undefined || Object.keys(h).length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

const INTERNAL_HEADER = /^Nats-/i;

function fromNatsHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  for (const k of h.keys()) if (!INTERNAL_HEADER.test(k)) out[k] = h.get(k);
  return out;
}

class JetStreamConsumer implements Consumer {
  private messages: ConsumerMessages | undefined;
  private inFlight: Promise<unknown> | undefined;
  private abort: (() => void) | undefined;
  private closing = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    readonly durable: string,
    private readonly processor: DeliverySink,
    private readonly ackWaitMs: number,
    private readonly logger: BusLogger,
    private readonly termWithReason: boolean,
    private readonly onClosed: (c: JetStreamConsumer) => void,
  ) {}

  stats(): ConsumerStats {
    return this.processor.stats();
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    // consume() rides out disconnects by itself; this outer loop covers the rarer case where it
    // ends with an error (consumer deleted and re-created, stream gone for a while).
    while (!this.closing) {
      try {
        const consumer = await this.js.consumers.get(this.stream, this.durable);
        const messages = await consumer.consume({ max_messages: 1 });
        this.messages = messages;
        if (this.closing) await messages.close();
        for await (const m of messages) {
          if (this.closing) {
            // Hand it straight back rather than letting it wait out ack-wait.
            m.nak();
            continue;
          }
          await this.handle(m);
        }
      } catch (err) {
        if (this.closing) break;
        this.logger.error({ stream: this.stream, durable: this.durable, err: describeError(err) }, 'consumer stopped; restarting');
        await sleep(RESTART_CONSUME_DELAY_MS);
      }
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    let abandoned = false;
    const aborted = new Promise<void>((resolve) => (this.abort = resolve));
    // A long handler must not look like a crash: keep telling the server the event is in progress.
    const progress = setInterval(() => m.working(), Math.max(100, Math.floor(this.ackWaitMs / 3)));
    const delivery: Delivery = {
      meta: {
        subject: m.subject,
        sequence: m.seq,
        msgId: m.headers?.get('Nats-Msg-Id') || undefined,
        deliveryCount: m.info.deliveryCount,
        redelivered: m.info.redelivered,
        publishedAt: m.time,
        headers: fromNatsHeaders(m.headers),
        durable: this.durable,
      },
      data: m.data,
      ack: async () => {
        if (abandoned) throw new EventBusClosedError(`ack of event ${m.seq}: consumer closed before the ack`);
        const ok = await m.ackAck({ timeout: 5000 });
        if (!ok) throw new EventBusUnavailableError(`ack of event ${m.seq} was not confirmed by the server`);
      },
      nak: (delayMs) => {
        if (!abandoned) m.nak(delayMs);
      },
      term: (reason) => {
        // Servers before 2.10 do not parse a reason and would leave the message pending.
        if (!abandoned) {
          if (this.termWithReason) m.term(reason);
          else m.term();
        }
      },
    };
    const run = this.processor.process(delivery);
    this.inFlight = run;
    try {
      await Promise.race([run, aborted]);
    } finally {
      clearInterval(progress);
      this.inFlight = undefined;
      this.abort = undefined;
      abandoned = true;
    }
  }

  async close(opts: CloseConsumerOptions = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (opts.graceful === false) this.abort?.();
    else await this.inFlight;
    await this.messages?.close();
    await this.loop;
    this.onClosed(this);
  }
}
