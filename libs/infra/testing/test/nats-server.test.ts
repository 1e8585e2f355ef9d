import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServerHandle } from '../src/nats-server.js';

/** Reads the server's greeting: a NATS server sends `INFO {json}` first on every connection. */
function readInfo(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const end = buf.indexOf('\r\n');
      if (end < 0) return;
      sock.destroy();
      const line = buf.slice(0, end);
      if (!line.startsWith('INFO ')) return reject(new Error(`unexpected greeting: ${line}`));
      resolve(JSON.parse(line.slice(5)) as Record<string, unknown>);
    });
    sock.once('error', reject);
  });
}

describe('startNatsServer', () => {
  const started: NatsServerHandle[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  it('starts a JetStream server on a free loopback port and removes its temp store on stop', async () => {
    const server = await startNatsServer();
    started.push(server);
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(4222);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const info = await readInfo(server.port);
    expect(info.jetstream).toBe(true);
    expect(info.port).toBe(server.port);
    expect(existsSync(server.storeDir)).toBe(true);

    await server.stop();
    expect(existsSync(server.storeDir)).toBe(false);
    await expect(readInfo(server.port)).rejects.toThrow(/ECONNREFUSED/);
    await server.stop(); // idempotent
  });

  it('kill() crashes the server and restart() brings it back on the same port with the same store', async () => {
    const server = await startNatsServer();
    started.push(server);
    const before = (await readInfo(server.port)).server_id;
    // JetStream lays out its state under the store dir as soon as it is enabled.
    expect(await readdir(server.storeDir)).toContain('jetstream');
    await writeFile(join(server.storeDir, 'marker'), 'kept');

    server.kill();
    await expect
      .poll(async () => readInfo(server.port).then(() => 'up', () => 'down'), { timeout: 3000, interval: 20 })
      .toBe('down');

    await server.restart();
    const info = await readInfo(server.port);
    expect(info.port).toBe(server.port);
    expect(info.jetstream).toBe(true);
    expect(info.server_id).not.toBe(before); // a new process...
    expect(await readFile(join(server.storeDir, 'marker'), 'utf8')).toBe('kept'); // ...on the same store

    await server.restart(); // graceful restart of a running server
    const again = await readInfo(server.port);
    expect(again.server_id).not.toBe(info.server_id);
    expect(again.port).toBe(server.port);
  });

  it('keeps a caller-supplied store dir on stop', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mstar-nats-test-'));
    try {
      const server = await startNatsServer({ storeDir: dir });
      started.push(server);
      expect(server.storeDir).toBe(dir);
      await server.stop();
      expect(existsSync(dir)).toBe(true);
      await expect(server.restart()).rejects.toThrow(/was stopped/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('kills its servers and removes their temp stores when the process exits without stop()', async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'exit-cleanup.fixture.ts')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const { port, storeDir } = JSON.parse(child.stdout) as { port: number; storeDir: string };
    expect(port).toBeGreaterThan(0);
    expect(existsSync(storeDir)).toBe(false);
    // SIGKILL is delivered at exit; the socket closes a moment later.
    await expect
      .poll(async () => readInfo(port).then(() => 'up', () => 'down'), { timeout: 3000, interval: 20 })
      .toBe('down');
  });

  it('starts several servers concurrently on distinct ports', async () => {
    const servers = await Promise.all([startNatsServer(), startNatsServer(), startNatsServer()]);
    started.push(...servers);
    expect(new Set(servers.map((s) => s.port)).size).toBe(3);
    await Promise.all(servers.map(async (s) => expect((await readInfo(s.port)).port).toBe(s.port)));
  });
});
