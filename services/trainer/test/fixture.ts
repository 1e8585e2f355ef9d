import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { commonV1, createEvent, eventsV1, eventSubject, runV1, type EventPayload } from '@mstar/contracts';
import type { EventBus, PublishOptions } from '@mstar/events';
import { loadCheckpoint, storeCheckpointIO, type Checkpoint } from '@mstar/models';
import { encodeDatasetRecords, runItems, type EvalItem } from '@mstar/recipes';
import { createRun } from '@mstar/runs';
import { parseRunSpec, runArtifacts, type ResolvedRunSpec } from '@mstar/runspec';
import { createFsArtifactStore, type ArtifactStore, type RunStore } from '@mstar/stores';
import { createLogger } from '@mstar/telemetry';
import { createTrainerClient, loadConfig, startTrainer, type RunningTrainer, type StartTrainerOptions, type TrainerClient, type TrainerConfig } from '../src/index.js';

export const silentLogger = createLogger({ service: 'trainer-test', level: 'silent' });

/** A TINY run: pool 48, warm-up 24 x 1 epoch (3 steps), PRM 2 epochs, iterations with batch 4. */
export const TINY_SPEC_YAML = `
name: trainer-test
seed: 7
model: { preset: TINY }
world: { pool_size: 48, validation_size: 8, in_domain_test_size: 0, out_of_domain_test_size: 0, world_seed: 3 }
warmup: { examples: 24, epochs: 1, learning_rate: 0.003, batch_size: 8 }
prm: { prompts: 8, samples_per_prompt: 2, rollouts_per_step: 2, epochs: 2, learning_rate: 0.003, batch_size: 8 }
iterations: 3
training_method: CONTINUOUS
max_new_tokens: 32
temperature: { mode: STATIC, grid: { list: { values: [1.0] } }, eval_samples_per_prompt: 4 }
optimizer: { learning_rate: 0.002, schedule: CONSTANT, weight_decay: 0.01, grad_clip: 1, batch_size: 4, epochs_per_iteration: 1 }
evaluation: { splits: [] }
`;

/** The tiny spec with top-level settings replaced or added (`{ training_method: 'RESTART_FROM_LAST' }`, values in YAML). */
export function tinySpec(overrides: Readonly<Record<string, string>> = {}): ResolvedRunSpec {
  const lines = TINY_SPEC_YAML.split('\n').filter((line) => !Object.keys(overrides).some((key) => line.startsWith(`${key}:`)));
  return parseRunSpec([...lines, ...Object.entries(overrides).map(([key, value]) => `${key}: ${value}`)].join('\n'));
}

/** The pool of the tiny spec's world. */
export function tinyPool(): EvalItem[] {
  return runItems(tinySpec().world, 'pool');
}

export interface TempArtifacts {
  readonly store: ArtifactStore;
  readonly root: string;
  cleanup(): Promise<void>;
}

export async function tempArtifacts(): Promise<TempArtifacts> {
  const root = await mkdtemp(join(tmpdir(), 'trainer-'));
  const store = await createFsArtifactStore({ root });
  return {
    store,
    root,
    async cleanup() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Stores a RUNNING run record with `spec`. */
export async function createRunRecord(store: RunStore, runId: string, spec: runV1.RunSpec): Promise<void> {
  const now = new Date();
  await createRun(store, runV1.Run.fromPartial({ runId, spec, state: runV1.RunState.RUNNING, stage: commonV1.Stage.WARMUP, createdAt: now, updatedAt: now }));
}

export function testConfig(env: Record<string, string> = {}): TrainerConfig {
  return loadConfig({ GRPC_PORT: '0', INTRA_OP_THREADS: '1', LOG_LEVEL: 'silent', SHUTDOWN_GRACE: '2s', ...env });
}

/** A published event as the bus saw it. */
export interface Published {
  readonly subject: string;
  readonly msgId: string;
  readonly duplicate: boolean;
  /** Undefined for bytes that are not an event (tests publish some on purpose). */
  readonly event: eventsV1.Event | undefined;
}

/** Wraps a bus so every publish is recorded (re-publications the bus drops as duplicates included). */
export function recordingBus(bus: EventBus): { bus: EventBus; published: Published[]; byTrainer(): Published[]; checkpoints(): commonV1.Checkpoint[] } {
  const published: Published[] = [];
  const wrapped: EventBus = {
    async publish(subject: string, data: Uint8Array, opts: PublishOptions) {
      const result = await bus.publish(subject, data, opts);
      let event: eventsV1.Event | undefined;
      try {
        event = eventsV1.Event.decode(data);
      } catch {
        event = undefined;
      }
      published.push({ subject, msgId: opts.msgId, duplicate: result.duplicate, event });
      return result;
    },
    consume: (opts) => bus.consume(opts),
    deadLetterSubject: (durable) => bus.deadLetterSubject(durable),
    close: () => bus.close(),
  };
  const byTrainer = (): Published[] => published.filter((p) => p.event?.source === 'trainer');
  const checkpoints = (): commonV1.Checkpoint[] =>
    byTrainer().flatMap((p) => (p.event?.payload?.$case === 'checkpointPublished' && p.event.payload.value.checkpoint !== undefined ? [p.event.payload.value.checkpoint] : []));
  return { bus: wrapped, published, byTrainer, checkpoints };
}

/** Publishes an event the way services do (msg id = event id), or with `msgId` to simulate a redelivery. */
export async function publishEvent(bus: EventBus, runId: string, payload: EventPayload, msgId?: string): Promise<eventsV1.Event> {
  const event = createEvent({ runId, source: 'test', payload });
  await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: msgId ?? event.eventId });
  return event;
}

export function runStarted(spec: runV1.RunSpec): EventPayload {
  return { $case: 'runStarted', value: { spec } };
}

/** Writes an iteration's dataset (one gold-CoT record per given pool item, COMPLETE marker after) and returns DatasetReady's payload. */
export async function writeDataset(store: ArtifactStore, runId: string, iteration: number, records: readonly { promptId: string; response: string }[]): Promise<EventPayload> {
  const keys = runArtifacts(runId);
  const key = keys.dataset(iteration);
  const policy = { runId, kind: commonV1.CheckpointKind.POLICY, version: iteration - 1 };
  await store.put(key, encodeDatasetRecords(records.map((r, i) => ({ ...r, prmScore: 0.5, policy, temperature: 1, sampleIndex: i, hinted: false }))));
  await store.put(keys.complete(key), new Uint8Array());
  return {
    $case: 'datasetReady',
    value: {
      dataset: commonV1.DatasetStats.fromPartial({ iteration, artifactKey: key, keptSamples: records.length, promptsTried: records.length, policy, temperature: 1, createdAt: new Date() }),
    },
  };
}

/** Gold-CoT dataset records for pool items [from, to). */
export function goldRecords(pool: readonly EvalItem[], from: number, to: number): { promptId: string; response: string }[] {
  return pool.slice(from, to).map((item) => ({ promptId: item.id, response: item.response! }));
}

export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface TestTrainer {
  readonly trainer: RunningTrainer;
  readonly client: TrainerClient;
  close(): Promise<void>;
}

export async function startTestTrainer(options: Omit<StartTrainerOptions, 'config' | 'logger'> & { config?: TrainerConfig }): Promise<TestTrainer> {
  const trainer = await startTrainer({ config: testConfig(), logger: silentLogger, ...options });
  const client = createTrainerClient(`127.0.0.1:${trainer.port}`, { retry: false });
  return {
    trainer,
    client,
    async close() {
      client.close();
      await trainer.close();
    },
  };
}

/** A stored checkpoint of the run, read back with @mstar/models. */
export function readCheckpoint(store: ArtifactStore, prefix: string, kind: 'policy' | 'prm'): Promise<Checkpoint> {
  return loadCheckpoint(storeCheckpointIO(store, prefix), { kind });
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

/** True when two weight maps hold the same tensors bit for bit. */
export function sameWeights(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (y === undefined || !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
  }
  return true;
}
