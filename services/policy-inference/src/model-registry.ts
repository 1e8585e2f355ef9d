import { commonV1 } from '@mstar/contracts';
import { NotFoundError, UnavailableError } from '@mstar/errors';
import { poolRunner, type GenerationRunner } from '@mstar/generation';
import {
  loadCheckpoint,
  numImageTokens,
  ONNX_FILES,
  exportOnnx,
  paramCount,
  REFERENCE_CONFIG,
  storeCheckpointIO,
  TINY_CONFIG,
  type ArtifactStoreLike,
  type ModelConfig,
} from '@mstar/models';
import type { SessionPool } from '@mstar/runtime';
import type { Logger } from '@mstar/telemetry';
import { createTokenizer, type TextTokenizer } from '@mstar/world';

/** Which policy checkpoint: the run that trained it and its version. */
export interface PolicyRef {
  readonly runId: string;
  readonly version: number;
}

/** A policy ready to generate. */
export interface LoadedPolicy {
  readonly ref: PolicyRef;
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly runner: GenerationRunner;
  readonly executionProvider: string;
  readonly loadedAt: Date;
}

/** Turns an artifact-store prefix into a loaded policy; `unload` frees what it holds. */
export interface PolicyLoader {
  load(ref: PolicyRef, prefix: string): Promise<{ policy: LoadedPolicy; unload(): Promise<void> }>;
}

/** Loads checkpoints from the artifact store into the worker pool, one pool key per graph and version. */
export function createPoolLoader(deps: { store: ArtifactStoreLike; pool: SessionPool; now?: () => Date }): PolicyLoader {
  const now = deps.now ?? ((): Date => new Date());
  return {
    async load(ref, prefix) {
      const ckpt = await loadCheckpoint(storeCheckpointIO(deps.store, prefix), { kind: 'policy' });
      const tokenizer = createTokenizer(ckpt.tokenizer);
      // The ONNX graphs are a function of config and weights; exporting them again is cheaper than
      // reading a second copy and cannot disagree with the weights.
      const files = exportOnnx(ckpt.config, 'policy', ckpt.weights);
      const base = `policy/${ref.runId}/v${ref.version}`;
      const keys: string[] = [];
      const loadGraph = async (name: string, file: string): Promise<Awaited<ReturnType<SessionPool['load']>>> => {
        const key = `${base}/${name}`;
        keys.push(key);
        return deps.pool.load(key, files.get(file) as Uint8Array);
      };
      const unload = async (): Promise<void> => {
        for (const key of keys) await deps.pool.unload(key);
      };
      try {
        const vision = await loadGraph('vision', ONNX_FILES.visionEncoder);
        const embed = await loadGraph('embed', ONNX_FILES.embedTokens);
        const decoder = await loadGraph('decoder', ONNX_FILES.decoder);
        const policy: LoadedPolicy = {
          ref,
          config: ckpt.config,
          tokenizer,
          runner: poolRunner(deps.pool, { decoder, embed, vision }),
          executionProvider: decoder.executionProviders[0] ?? 'cpu',
          loadedAt: now(),
        };
        return { policy, unload };
      } catch (err) {
        await unload().catch(() => undefined);
        throw err;
      }
    },
  };
}

/** A policy held for one request: it stays loaded until `release`. */
export interface PolicyLease {
  readonly policy: LoadedPolicy;
  release(): void;
}

export interface ModelRegistry {
  /** Loads a version (a no-op when it is loaded) and makes it current if it is the newest. */
  load(ref: PolicyRef, prefix: string): Promise<LoadedPolicy>;
  /** The pinned version, or the current one. NotFoundError / UnavailableError otherwise. */
  acquire(version?: number): PolicyLease;
  /** The newest loaded version; undefined until the first load. */
  current(): LoadedPolicy | undefined;
  /** Versions that can be acquired, newest first. */
  versions(): number[];
  /** Unloads every version once its leases are released. */
  close(): Promise<void>;
}

interface Entry {
  readonly policy: LoadedPolicy;
  readonly unload: () => Promise<void>;
  leases: number;
  retired: boolean;
}

/**
 * Versions of one run's policy. The newest `retain` versions stay acquirable; an older one is
 * retired (no new leases) and unloaded once the requests holding it have finished, so a hot reload
 * never pulls weights from under an in-flight request.
 */
export function createModelRegistry(deps: { loader: PolicyLoader; retain: number; logger: Logger; onChange?: () => void }): ModelRegistry {
  const entries = new Map<number, Entry>();
  const loading = new Map<number, Promise<LoadedPolicy>>();
  const unloads = new Set<Promise<void>>();

  const live = (): Entry[] => [...entries.values()].filter((e) => !e.retired).sort((a, b) => b.policy.ref.version - a.policy.ref.version);

  const unloadWhenIdle = (entry: Entry): void => {
    if (!entry.retired || entry.leases > 0) return;
    entries.delete(entry.policy.ref.version);
    const done = entry
      .unload()
      .then(() => deps.logger.info({ version: entry.policy.ref.version }, 'policy version unloaded'))
      .catch((err: unknown) => deps.logger.error({ err, version: entry.policy.ref.version }, 'policy version unload failed'))
      .finally(() => unloads.delete(done));
    unloads.add(done);
  };

  const retireOld = (): void => {
    for (const entry of live().slice(deps.retain)) {
      entry.retired = true;
      unloadWhenIdle(entry);
    }
  };

  const doLoad = async (ref: PolicyRef, prefix: string): Promise<LoadedPolicy> => {
    const started = Date.now();
    const loaded = await deps.loader.load(ref, prefix);
    const { policy } = loaded;
    entries.set(ref.version, { policy, unload: () => loaded.unload(), leases: 0, retired: false });
    retireOld();
    deps.logger.info({ runId: ref.runId, version: ref.version, prefix, ms: Date.now() - started }, 'policy version loaded');
    deps.onChange?.();
    return policy;
  };

  return {
    load(ref, prefix) {
      const existing = entries.get(ref.version);
      if (existing !== undefined && !existing.retired) return Promise.resolve(existing.policy);
      const pending = loading.get(ref.version);
      if (pending !== undefined) return pending;
      const promise = doLoad(ref, prefix).finally(() => loading.delete(ref.version));
      loading.set(ref.version, promise);
      return promise;
    },
    acquire(version) {
      const newest = live()[0];
      if (newest === undefined) throw new UnavailableError('no policy is loaded yet');
      const entry = version === undefined ? newest : entries.get(version);
      if (entry === undefined || entry.retired) {
        throw new NotFoundError(`policy version ${version} is not loaded; loaded versions: ${live().map((e) => e.policy.ref.version).join(', ')}`);
      }
      entry.leases++;
      let released = false;
      return {
        policy: entry.policy,
        release() {
          if (released) return;
          released = true;
          entry.leases--;
          unloadWhenIdle(entry);
        },
      };
    },
    current: () => live()[0]?.policy,
    versions: () => live().map((e) => e.policy.ref.version),
    async close() {
      await Promise.allSettled(loading.values());
      for (const entry of entries.values()) {
        entry.retired = true;
        unloadWhenIdle(entry);
      }
      await Promise.all(unloads);
    },
  };
}

function samePreset(config: ModelConfig, preset: ModelConfig): boolean {
  return JSON.stringify(config) === JSON.stringify(preset);
}

/** The model's shape as the contract describes it. */
export function modelSummary(config: ModelConfig): commonV1.ModelSummary {
  const preset = samePreset(config, TINY_CONFIG)
    ? commonV1.ModelPreset.TINY
    : samePreset(config, REFERENCE_CONFIG)
      ? commonV1.ModelPreset.REFERENCE
      : commonV1.ModelPreset.UNSPECIFIED;
  return {
    preset,
    parameterCount: paramCount(config, 'policy'),
    contextLength: config.text.maxPositionEmbeddings,
    vocabSize: config.text.vocabSize,
    hiddenSize: config.text.hiddenSize,
    numLayers: config.text.layers,
    numAttentionHeads: config.text.heads,
    imageSize: config.vision.imageSize,
    imageTokens: numImageTokens(config),
  };
}
