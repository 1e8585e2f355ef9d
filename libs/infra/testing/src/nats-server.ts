import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A `nats-server` with JetStream, started by this process for one test suite. */
export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** JetStream store directory; kept across `restart()` and `kill()`. */
  readonly storeDir: string;
  /** Terminates the server and removes the store dir unless the caller supplied it. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server if it is running (gracefully) and starts it again on the same port and store dir. */
  restart(): Promise<void>;
  /** SIGKILLs the server (a crash); `restart()` brings it back with the same store. */
  kill(): void;
}

export interface StartNatsServerOptions {
  /** Store dir to use (and keep on stop). Default: a fresh temp dir removed on stop. */
  storeDir?: string;
  /** How long to wait for the server to accept connections. Default 5000 ms. */
  readyTimeoutMs?: number;
}

const DEFAULT_BINARY = '/usr/sbin/nats-server';
const STDERR_TAIL_CHARS = 4000;

// A test process that exits without calling stop() must not leave servers or temp dirs behind.
const live = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
    // Only synchronous work runs in an exit handler.
    for (const d of ownedDirs) rmSync(d, { recursive: true, force: true });
  });
}
function track(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

let resolvedBinary: string | undefined;
function natsServerBinary(): string {
  if (resolvedBinary !== undefined) return resolvedBinary;
  if (existsSync(DEFAULT_BINARY)) return (resolvedBinary = DEFAULT_BINARY);
  const probe = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (probe.error === undefined && probe.status === 0) return (resolvedBinary = 'nats-server');
  throw new Error(
    `nats-server binary not found (looked for ${DEFAULT_BINARY} and 'nats-server' on PATH); install it with 'apt-get install -y nats-server'`,
  );
}

/** A TCP port free at the time of the call (for servers that must be told their port up front). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not allocate a free TCP port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

class NatsServer implements NatsServerHandle {
  readonly url: string;
  private child: ChildProcess | undefined;
  private stderrTail = '';
  private stopped = false;

  constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStoreDir: boolean,
    private readonly readyTimeoutMs: number,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    this.stderrTail = '';
    const child = spawn(
      natsServerBinary(),
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    track(child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));

    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
        const why = spawnError?.message ?? `exited with code ${child.exitCode} signal ${child.signalCode}`;
        throw new Error(`nats-server on port ${this.port} failed to start (${why}); stderr:\n${this.stderrTail}`, {
          cause: spawnError,
        });
      }
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await waitForExit(child);
        throw new Error(
          `nats-server on port ${this.port} did not accept connections within ${this.readyTimeoutMs} ms; stderr:\n${this.stderrTail}`,
        );
      }
      await sleep(20);
    }
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // A server flushing a big store may take a moment; never wait forever.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await waitForExit(child);
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error(`nats-server on port ${this.port} was stopped; it cannot be restarted`);
    await this.terminate();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.terminate();
    if (this.ownsStoreDir) await removeOwnedDir(this.storeDir);
  }
}

async function removeOwnedDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

/** Starts a private JetStream-enabled `nats-server` on a free loopback port. Always `stop()` it. */
export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  natsServerBinary();
  const ownsStoreDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'mstar-nats-')));
  if (ownsStoreDir) {
    installExitHook();
    ownedDirs.add(storeDir);
  }
  // Another process may grab the port between freePort() and the server's bind: retry on a new one.
  for (let attempt = 1; ; attempt++) {
    const server = new NatsServer(await freePort(), storeDir, ownsStoreDir, opts.readyTimeoutMs ?? 5000);
    try {
      await server.start();
      return server;
    } catch (err) {
      // start() leaves no process behind when it throws.
      const portTaken = err instanceof Error && /address already in use/i.test(err.message);
      if (!portTaken || attempt === 3) {
        if (ownsStoreDir) await removeOwnedDir(storeDir);
        throw err;
      }
    }
  }
}
