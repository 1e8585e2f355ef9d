import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { commonV1 } from '@mstar/contracts';
import { initWeights, saveCheckpoint, storeCheckpointIO, TINY_CONFIG } from '@mstar/models';
import { createFsArtifactStore, type ArtifactStore } from '@mstar/stores';
import { createLogger } from '@mstar/telemetry';
import { buildWorldTokenizer, encodePng } from '@mstar/world';
import { service as healthService } from 'grpc-health-check';
import { loadConfig, type PolicyInferenceConfig, type PolicyLoader } from '../src/index.js';

export const RUN_ID = 'run-test';
export const silentLogger = createLogger({ service: 'policy-inference-test', level: 'silent' });

export function checkpointPrefix(version: number): string {
  return `runs/${RUN_ID}/checkpoints/policy/v${version}`;
}

export interface TempArtifacts {
  readonly store: ArtifactStore;
  cleanup(): Promise<void>;
}

export async function tempArtifacts(): Promise<TempArtifacts> {
  const root = await mkdtemp(join(tmpdir(), 'policy-inference-'));
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
 * Writes a TINY policy checkpoint whose weights come from `seed`, scaled x5 so the untrained
 * model's distribution is peaked enough that different versions and seeds give different texts.
 */
export async function writeCheckpoint(store: ArtifactStore, version: number, seed = version + 1): Promise<string> {
  const weights = initWeights(TINY_CONFIG, 'policy', seed);
  for (const [name, data] of weights) {
    if (name.endsWith('.weight') && !name.includes('norm')) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * 5;
  }
  const prefix = checkpointPrefix(version);
  await saveCheckpoint(storeCheckpointIO(store, prefix), { kind: 'policy', config: TINY_CONFIG, weights, tokenizer: buildWorldTokenizer() }, { onnx: false });
  return prefix;
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

export function testConfig(env: Record<string, string> = {}): PolicyInferenceConfig {
  return loadConfig({ GRPC_PORT: '0', RUN_ID, WORKERS: '1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'silent', SHUTDOWN_GRACE: '2s', ...env });
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

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMs`. */
export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Wraps a policy loader (`wrapLoader`) to watch the decoder graph runs: `runs` counts them (work
 * that has really begun on a worker), and between `hold()` and the release it returns each one
 * waits, so a test can keep a wave in place for as long as it needs instead of racing its length.
 */
export function decoderProbe(): { wrap: (loader: PolicyLoader) => PolicyLoader; runs(): number; waiting(): number; hold(): () => void } {
  let runs = 0;
  let waiting = 0;
  let gate: Promise<void> | undefined;
  return {
    wrap: (loader) => ({
      async load(ref, prefix) {
        const loaded = await loader.load(ref, prefix);
        const inner = loaded.model.runner;
        const runner = {
          layout: inner.layout,
          run: async (...args: Parameters<typeof inner.run>) => {
            if (args[0] === 'decoder') {
              runs++;
              if (gate !== undefined) {
                waiting++;
                await gate;
                waiting--;
              }
            }
            return inner.run(...args);
          },
        };
        return { ...loaded, model: { ...loaded.model, runner } };
      },
    }),
    runs: () => runs,
    waiting: () => waiting,
    hold() {
      let release = (): void => undefined;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}
