import { describeError } from '@mstar/errors';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { StoreUnavailableError } from './errors.js';

export interface NatsStoreConnectionOptions {
  /** NATS server URL(s). */
  servers: string | string[];
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Per-request timeout for store operations. Default 5000. */
  timeoutMs?: number;
}

/** Connects for a store: fail fast on the first connect, then reconnect forever. */
export async function connectForStore(opts: NatsStoreConnectionOptions, defaultName: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: opts.servers,
      name: opts.name ?? defaultName,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (err) {
    throw new StoreUnavailableError(`cannot connect to NATS at ${String(opts.servers)}: ${describeError(err)}`, { cause: err });
  }
}
