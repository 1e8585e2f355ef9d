import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ModelLoader } from '@mstar/bootstrap';
import { commonV1, createEvent, eventsV1, eventSubject } from '@mstar/contracts';
import { formatCot } from '@mstar/cot';
import type { EventBus } from '@mstar/events';
import { exportOnnx, initWeights, ONNX_FILES, saveCheckpoint, storeCheckpointIO, TINY_CONFIG, type ModelWeights } from '@mstar/models';
import { createSession, type Session } from '@mstar/runtime';
import { createFsArtifactStore, type ArtifactStore } from '@mstar/stores';
import { createLogger } from '@mstar/telemetry';
import { checkpointPublished } from '@mstar/testing';
import { buildWorldTokenizer, createWorldTokenizer, encodePng } from '@mstar/world';
import { service as healthService } from 'grpc-health-check';
import { loadConfig, type LoadedPrm, type PrmScoringConfig } from '../src/index.js';

export { gate } from './gate.js';

export const RUN_ID = 'run-test';
export const silentLogger = createLogger({ service: 'prm-scoring-test', level: 'silent' });

export function checkpointPrefix(version: number): string {
  return `runs/${RUN_ID}/checkpoints/prm/v${version}`;
}

export interface TempArtifacts {
  readonly store: ArtifactStore;
  cleanup(): Promise<void>;
}

export async function tempArtifacts(): Promise<TempArtifacts> {
  const root = await mkdtemp(join(tmpdir(), 'prm-scoring-'));
  const store = await createFsArtifactStore({ root });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * TINY PRM weights drawn from `seed`, matrices scaled x5 so the untrained model's scores spread
 * well away from 0.5 and differ between versions.
 */
export function prmWeights(seed: number): ModelWeights {
  const weights = initWeights(TINY_CONFIG, 'prm', seed);
  for (const [name, data] of weights) {
    if (name.endsWith('.weight') && !name.includes('norm')) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * 5;
  }
  return weights;
}

/** Writes the PRM checkpoint of `version` (weights from seed version + 1) and returns its prefix. */
export async function writeCheckpoint(store: ArtifactStore, version: number): Promise<string> {
  const prefix = checkpointPrefix(version);
  await saveCheckpoint(storeCheckpointIO(store, prefix), { kind: 'prm', config: TINY_CONFIG, weights: prmWeights(version + 1), tokenizer: buildWorldTokenizer() }, { onnx: false });
  return prefix;
}

/** The scoring graph of `version`'s weights in a session on this thread: the reference the service must match. */
export function directSession(version: number): Promise<Session> {
  const graph = exportOnnx(TINY_CONFIG, 'prm', prmWeights(version + 1)).get(ONNX_FILES.prmScores) as Uint8Array;
  return createSession(graph, { device: 'cpu', intraOpThreads: 1 });
}

/** A LoadedPrm over an in-thread session, for `prepareRows` / `scoringBatch` in tests. */
export function directPrm(session: Session, version: number): LoadedPrm {
  return {
    ref: { runId: RUN_ID, version },
    config: TINY_CONFIG,
    tokenizer: createWorldTokenizer(),
    runner: { run: async (feeds) => (await session.run(feeds, ['scores']))['scores']?.data as Float32Array },
    executionProvider: 'cpu',
    loadedAt: new Date(0),
  };
}

/** A 32x32 PNG with pixels drawn from `seed`. */
export function pngImage(seed: number): Buffer {
  const data = new Uint8Array(32 * 32 * 3);
  let x = seed * 2654435761;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return Buffer.from(encodePng({ width: 32, height: 32, data }));
}

export function prompt(i: number, question = 'how many red circles are there?'): commonV1.Prompt {
  return { promptId: `p-${i}`, image: pngImage(i), question, responsePrefix: '' };
}

/** Canonical CoT answers of 1 to 4 steps. */
export const RESPONSES = [
  formatCot(['the number of red circles is 3.', 'the number of blue squares is 2.', '3 is more than 2.', 'so red wins.'], 'red'),
  formatCot(['the number of red circles is 4.', 'the number of red circles is 4.'], '4'),
  formatCot(['there are 3 red circles.', 'so the answer is 3.', 'done.'], '3'),
  formatCot(['3.'], '3'),
];

export function testConfig(env: Record<string, string> = {}): PrmScoringConfig {
  return loadConfig({ GRPC_PORT: '0', RUN_ID, WORKERS: '1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'silent', SHUTDOWN_GRACE: '2s', ...env });
}

/** What the service ran through its PRM: one entry per graph run, with its rows. */
export interface RunLog {
  readonly runs: { version: number; rows: number }[];
  /** While set, every graph run waits for it first (holds the worker busy on demand). */
  gate: Promise<void> | undefined;
  /** Number of versions unloaded. */
  unloads: number[];
}

/** Wraps the pool loader so that tests see every graph run and can hold runs at a gate. */
export function recordingLoader(log: RunLog): (loader: ModelLoader<LoadedPrm>) => ModelLoader<LoadedPrm> {
  return (loader) => ({
    async load(ref, prefix) {
      const loaded = await loader.load(ref, prefix);
      const inner = loaded.model.runner;
      const runner = {
        async run(feeds: Parameters<typeof inner.run>[0]) {
          log.runs.push({ version: ref.version, rows: feeds['input_ids']?.dims[0] ?? 0 });
          await log.gate;
          return inner.run(feeds);
        },
      };
      return {
        model: { ...loaded.model, runner },
        unload: async () => {
          log.unloads.push(ref.version);
          await loaded.unload();
        },
      };
    },
  });
}

export async function publishCheckpoint(bus: EventBus, version: number, kind = commonV1.CheckpointKind.PRM): Promise<void> {
  const event = createEvent({ runId: RUN_ID, source: 'trainer-test', payload: checkpointPublished(RUN_ID, kind, version, { artifactPrefix: checkpointPrefix(version) }) });
  await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
}

// grpc-health-check's definition is loaded with `enums: String`.
type HealthResponse = { status: string };
interface HealthClient extends grpc.Client {
  check(req: { service: string }, options: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: HealthResponse) => void): void;
}
const HealthClientCtor = grpc.makeGenericClientConstructor(healthService, 'Health') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => HealthClient;

/** grpc.health.v1 Check: 'SERVING' / 'NOT_SERVING'. */
export function healthClient(address: string): { check(): Promise<string>; close(): void } {
  const client = new HealthClientCtor(address, grpc.credentials.createInsecure());
  return {
    check: () =>
      new Promise((resolve, reject) => {
        client.check({ service: '' }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.status)));
      }),
    close: () => client.close(),
  };
}

/** The error a call failed with; throws when the call succeeds. */
export async function failure(work: () => Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await work();
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded but was expected to fail');
}

export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
