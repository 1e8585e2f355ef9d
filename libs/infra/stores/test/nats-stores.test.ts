import { startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsArtifactStore, createNatsRunStore, StoreUnavailableError } from '../src/index.js';
import { runArtifactStoreContract } from './artifact-store-contract.js';
import { runRunStoreContract } from './run-store-contract.js';

let server: NatsServerHandle;
let n = 0;
const bucket = () => `b${process.pid}_${Date.now().toString(36)}_${n++}`;

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

runRunStoreContract('NATS KV', () => createNatsRunStore({ servers: server.url, bucket: bucket() }));
runArtifactStoreContract('NATS object store', () => createNatsArtifactStore({ servers: server.url, bucket: bucket() }));

describe('NATS stores specifics', () => {
  it('fail fast with StoreUnavailableError when no server is reachable', async () => {
    await expect(createNatsRunStore({ servers: 'nats://127.0.0.1:1', bucket: 'x' })).rejects.toThrow(StoreUnavailableError);
    await expect(createNatsArtifactStore({ servers: 'nats://127.0.0.1:1', bucket: 'x' })).rejects.toThrow(
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/,
    );
  });

  it('keeps values and artifacts across a server restart, and a second connection sees them', async () => {
    const name = bucket();
    const runs = await createNatsRunStore({ servers: server.url, bucket: name });
    const artifacts = await createNatsArtifactStore({ servers: server.url, bucket: name });
    const rev = await runs.create('runs.r1', new TextEncoder().encode('started'));
    await artifacts.putJson('runs/r1/summary.json', { ok: true });
    await runs.close();
    await artifacts.close();

    await server.restart();

    const runs2 = await createNatsRunStore({ servers: server.url, bucket: name });
    const artifacts2 = await createNatsArtifactStore({ servers: server.url, bucket: name });
    try {
      expect((await runs2.get('runs.r1'))?.revision).toBe(rev);
      expect(await artifacts2.getJson('runs/r1/summary.json')).toEqual({ ok: true });
    } finally {
      await runs2.close();
      await artifacts2.close();
    }
  });
});
