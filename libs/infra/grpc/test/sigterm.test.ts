import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient, promiseClient, Status } from '../src/index.js';
import { errorOf, HealthClient, ProbeClient } from './support.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

interface Child {
  process: ChildProcess;
  lines: Record<string, unknown>[];
  port: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const clients: grpc.Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function spawnServer(graceMs: number): Promise<Child> {
  const child = spawn(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', 'test/fixtures/drain-server.ts', String(graceMs)], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ raw: line });
    }
  });
  await vi.waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`fixture exited early: ${JSON.stringify(lines)}`);
      expect(lines.some((l) => l.msg === 'grpc server readiness changed')).toBe(true);
    },
    { timeout: 15_000, interval: 20 },
  );
  const port = lines.find((l) => l.msg === 'grpc server listening')!.port as number;
  return { process: child, lines, port, exit };
}

function clientsFor(port: number) {
  const probe = createClient(ProbeClient, `127.0.0.1:${port}`, { deadlineMs: 5_000, retry: false });
  const health = createClient(HealthClient, `127.0.0.1:${port}`, { deadlineMs: 2_000, retry: false });
  clients.push(probe, health);
  return { probe: promiseClient(probe), health: promiseClient(health) };
}

const waitForLine = (child: Child, msg: string) =>
  vi.waitFor(() => expect(child.lines.some((l) => l.msg === msg)).toBe(true), { timeout: 5_000, interval: 10 });

describe('SIGTERM in a child process', () => {
  it('drains: the in-flight call completes, new calls fail, health says NOT_SERVING, the process exits 0', async () => {
    const child = await spawnServer(5_000);
    const { probe, health } = clientsFor(child.port);
    expect(await health.check({ service: '' })).toEqual({ status: 'SERVING' });

    const inFlight = probe.Slow({ ms: 1_500, text: 'in-flight' });
    await waitForLine(child, 'slow call started');
    child.process.kill('SIGTERM');
    await waitForLine(child, 'grpc server draining');

    expect(await health.check({ service: '' })).toEqual({ status: 'NOT_SERVING' });
    expect(await health.check({ service: 'mstar.test.v1.Probe' })).toEqual({ status: 'NOT_SERVING' });
    expect(await errorOf(probe.Echo({ text: 'after SIGTERM' }))).toMatchObject({
      code: Status.UNAVAILABLE,
      details: 'server is shutting down',
    });

    expect(await inFlight).toMatchObject({ text: 'in-flight' });
    expect(await child.exit).toEqual({ code: 0, signal: null });
    expect(child.lines.find((l) => l.msg === 'grpc server draining')).toMatchObject({ reason: 'SIGTERM', inFlight: 1 });
    expect(child.lines.find((l) => l.msg === 'grpc server stopped')).toMatchObject({ reason: 'SIGTERM', forced: false });
  });

  it('stops at once on a second signal, cancelling what still runs, and still exits 0', async () => {
    const child = await spawnServer(30_000);
    const { probe } = clientsFor(child.port);
    const stuck = errorOf(probe.Slow({ ms: 20_000, text: 'stuck' }));
    await waitForLine(child, 'slow call started');
    const startedAt = Date.now();
    child.process.kill('SIGTERM');
    await waitForLine(child, 'grpc server draining');
    child.process.kill('SIGINT');
    expect(await child.exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    expect((await stuck).code).not.toBe(Status.OK);
    expect(child.lines.some((l) => l.msg === 'grpc server forced to stop by a second signal')).toBe(true);
    expect(child.lines.find((l) => l.msg === 'grpc server stopped')).toMatchObject({ forced: true });
  });
});
