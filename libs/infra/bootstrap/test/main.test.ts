import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/service.ts', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bootstrap-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the fixture service; `signalWhen` sends SIGTERM once a stdout line contains it. */
function run(env: Record<string, string>, signalWhen?: string): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const child = spawn(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', FIXTURE], { env: { ...process.env, ARTIFACT_DIR: dir, ...env } });
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      lines.push(JSON.parse(part) as Record<string, unknown>);
      if (signalWhen !== undefined && part.includes(signalWhen)) child.kill('SIGTERM');
    }
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, lines })));
}

describe('runServiceMain', () => {
  it('starts without NATS when the service allows it, and drains on SIGTERM before releasing', async () => {
    const { code, lines } = await run({}, 'fixture listening');
    expect(code).toBe(0);
    expect(lines.find((l) => l['started'] === true)).toMatchObject({ bus: false, runStore: false });
    const messages = lines.map((l) => (l['closed'] === true ? 'closed' : l['msg']));
    expect(messages.slice(messages.indexOf('fixture listening'))).toEqual(['fixture listening', 'draining', 'closed', 'stopped']);
    expect(lines.find((l) => l['msg'] === 'fixture listening')).toMatchObject({ service: 'fixture', port: 1234 });
  }, 60_000);

  it('refuses to start without NATS_URL when the service needs it, saying why', async () => {
    const { code, lines } = await run({ REQUIRES_NATS: '1' });
    expect(code).toBe(1);
    expect(lines.some((l) => l['started'] === true)).toBe(false);
    expect(lines.find((l) => l['level'] === 'fatal')?.['msg']).toBe('NATS_URL is not set: the fixture needs events');
  }, 60_000);

  it('logs a startup failure and exits 1 when NATS cannot be reached', async () => {
    const { code, lines } = await run({ NATS_URL: 'nats://127.0.0.1:1' });
    expect(code).toBe(1);
    expect(lines.find((l) => l['level'] === 'fatal')?.['msg']).toBe('startup failed');
  }, 60_000);
});
