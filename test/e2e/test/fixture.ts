import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commonV1, type eventsV1 } from '@mstar/contracts';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const TINY_SPEC = join(ROOT, 'specs/tiny.yaml');

/** The event kinds of a finished 2-iteration run and how many of each (docs/loop.md). */
export function countEvents(events: readonly eventsV1.Event[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) {
    let kind = e.payload?.$case ?? 'none';
    if (e.payload?.$case === 'checkpointPublished') kind += e.payload.value.checkpoint?.ref?.kind === commonV1.CheckpointKind.PRM ? ':prm' : ':policy';
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

export const EXPECTED_EVENTS_2_ITERATIONS = {
  runStarted: 1,
  'checkpointPublished:policy': 3,
  prmDataReady: 1,
  'checkpointPublished:prm': 1,
  iterationEvaluated: 3,
  temperatureSelected: 2,
  datasetReady: 2,
  runFinished: 1,
};

/** Every file under `dir` (relative path -> sha256), optionally rewriting text before hashing. */
export async function hashTree(dir: string, rewrite: (path: string, text: string) => string = (_p, t) => t): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const rel = relative(dir, path);
        const bytes = await readFile(path);
        const data = rel.endsWith('.jsonl') || rel.endsWith('.json') ? rewrite(rel, bytes.toString('utf8')) : bytes;
        out.set(rel, createHash('sha256').update(data).digest('hex'));
      }
    }
  };
  await walk(dir);
  return out;
}

/** One service as its own OS process, started from its sources like `npm start -w` does. */
export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The last lines of its stdout + stderr, for failure messages. */
  tail(): string;
  /** SIGKILL, as a crash. Resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM and wait (the graceful drain). */
  stop(): Promise<void>;
}

export function startServiceProcess(name: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', join(ROOT, 'services', name, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    child,
    tail: () => lines.slice(-40).join('\n'),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
