import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commonV1, eventsV1, type runV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { runArtifacts } from '@mstar/runspec';
import { createFsArtifactStore } from '@mstar/stores';
import type { Platform } from './platform.js';

/*
 * The folder of one (row, seed) run: runs/<row>/seed-<seed>/ under the experiment's results. It
 * holds what runLocal writes (artifacts/, services.log, summary.json, summary.md), the spec that
 * ran (spec.yaml) and, written last, result.json: the run counts as complete exactly when
 * result.json exists. A folder without it is a run that was interrupted, and is redone.
 */

/** One completed run: its per-iteration rows and the temperature selections with their sweep tables. */
export interface RunResult {
  readonly row: string;
  readonly seed: number;
  readonly runId: string;
  readonly wallSeconds: number;
  /** The spec that ran, as `formatRunSpec` writes it (compared on resume). */
  readonly spec: string;
  /** The run record's summary: IterationStats of policies v0..vN. */
  readonly iterations: readonly commonV1.IterationStats[];
  /** TemperatureSelected of iterations 1..N as the balancer recorded them (with the sweep table when one ran). */
  readonly selections: readonly eventsV1.TemperatureSelected[];
  /** The run whose policy v0 this run took instead of training its own (`--reuse-warmup`); its wall time then leaves the warm-up out. */
  readonly warmupFrom?: string | undefined;
  /** The machine it ran on (absent in results written before it was recorded). */
  readonly platform?: Platform | undefined;
}

export const RESULT_FILE = 'result.json';
export const SPEC_FILE = 'spec.yaml';

export const runDir = (outDir: string, row: string, seed: number): string => join(outDir, 'runs', row, `seed-${seed}`);

export const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

export const isComplete = (dir: string): Promise<boolean> => exists(join(dir, RESULT_FILE));

/** Writes result.json through a temporary file and a rename, so a crash never leaves half of it. */
export async function writeResult(dir: string, result: RunResult): Promise<void> {
  const json = {
    row: result.row,
    seed: result.seed,
    runId: result.runId,
    wallSeconds: result.wallSeconds,
    spec: result.spec,
    iterations: result.iterations.map((s) => commonV1.IterationStats.toJSON(s)),
    selections: result.selections.map((s) => eventsV1.TemperatureSelected.toJSON(s)),
    ...(result.warmupFrom === undefined ? {} : { warmupFrom: result.warmupFrom }),
    ...(result.platform === undefined ? {} : { platform: result.platform }),
  };
  const tmp = join(dir, `${RESULT_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(json, null, 2)}\n`);
  await rename(tmp, join(dir, RESULT_FILE));
}

export async function readResult(dir: string): Promise<RunResult> {
  const path = join(dir, RESULT_FILE);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new InvalidArgumentError(`${path}: not a readable result: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const list = (key: string): unknown[] => (Array.isArray(raw[key]) ? raw[key] : []);
  return {
    row: String(raw['row']),
    seed: Number(raw['seed']),
    runId: String(raw['runId']),
    wallSeconds: Number(raw['wallSeconds']),
    spec: String(raw['spec']),
    iterations: list('iterations').map((s) => commonV1.IterationStats.fromJSON(s)),
    selections: list('selections').map((s) => eventsV1.TemperatureSelected.fromJSON(s)),
    ...(typeof raw['warmupFrom'] === 'string' ? { warmupFrom: raw['warmupFrom'] } : {}),
    ...(isPlatform(raw['platform']) ? { platform: raw['platform'] } : {}),
  };
}

function isPlatform(value: unknown): value is Platform {
  const p = value as Partial<Record<keyof Platform, unknown>> | undefined;
  return typeof p === 'object' && p !== null && typeof p.arch === 'string' && typeof p.cpu === 'string' && Array.isArray(p.simd) && p.simd.every((f) => typeof f === 'string');
}

/**
 * The balancer's temperature selections, read from the run's artifact store. The run record keeps
 * only the chosen temperature; the sweep tables live in the balancer's evaluation record of each
 * policy, `runs/<run>/balancer/iteration-<i>.json` ({ stats, selection }), which the balancer
 * writes before it publishes TemperatureSelected. That key layout is the balancer's (it exports no
 * reader), so it is named once, here.
 */
export async function readSelections(artifactsRoot: string, runId: string): Promise<eventsV1.TemperatureSelected[]> {
  if (!(await exists(artifactsRoot))) return [];
  const store = await createFsArtifactStore({ root: artifactsRoot });
  try {
    const prefix = `${runArtifacts(runId).root}/balancer/iteration-`;
    const selections: eventsV1.TemperatureSelected[] = [];
    for (const key of await store.list(prefix)) {
      if (!/^\d+\.json$/.test(key.slice(prefix.length))) continue;
      const record = await store.getJson<{ selection?: unknown }>(key);
      if (record.selection !== undefined) selections.push(eventsV1.TemperatureSelected.fromJSON(record.selection));
    }
    return selections.sort((a, b) => a.iteration - b.iteration);
  } finally {
    await store.close();
  }
}

/**
 * Deletes the policy checkpoints between the first and the last (about 115 MB each for the
 * reference model): what remains is v0, the final policy, the PRM, the datasets and the records.
 */
export async function pruneCheckpoints(artifactsRoot: string, run: runV1.Run): Promise<number> {
  if (!(await exists(artifactsRoot))) return 0;
  const store = await createFsArtifactStore({ root: artifactsRoot });
  try {
    const keys = runArtifacts(run.runId);
    const last = run.summary.at(-1)?.iteration ?? 0;
    let deleted = 0;
    for (let version = 1; version < last; version++) {
      for (const key of await store.list(`${keys.policyCheckpoint(version)}/`)) {
        if (await store.delete(key)) deleted++;
      }
    }
    return deleted;
  } finally {
    await store.close();
  }
}

/**
 * Copies policy v0 of run `from` into the artifacts of run `to` (both `{ artifacts root, run id }`),
 * its COMPLETE marker last, and returns how many files it copied; 0 when `from` no longer holds a
 * complete v0. The trainer of `to` then finds v0 complete and publishes it instead of training it.
 */
export async function copyPolicyV0(from: { readonly artifacts: string; readonly runId: string }, to: { readonly artifacts: string; readonly runId: string }): Promise<number> {
  if (!(await exists(from.artifacts))) return 0;
  const [source, target] = [await createFsArtifactStore({ root: from.artifacts }), await createFsArtifactStore({ root: to.artifacts })];
  try {
    const [prefix, into] = [runArtifacts(from.runId).policyCheckpoint(0), runArtifacts(to.runId).policyCheckpoint(0)];
    const marker = runArtifacts(from.runId).complete(prefix);
    if (!(await source.exists(marker))) return 0;
    const keys = (await source.list(`${prefix}/`)).filter((key) => key !== marker);
    for (const key of [...keys, marker]) await target.put(`${into}${key.slice(prefix.length)}`, await source.getStream(key));
    return keys.length + 1;
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}
