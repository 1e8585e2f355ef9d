import type { ModelLoader, ModelRef } from '@mstar/bootstrap';
import { poolRunner, type GenerationRunner } from '@mstar/generation';
import { exportOnnx, loadCheckpoint, ONNX_FILES, storeCheckpointIO, type ArtifactStoreLike, type ModelConfig } from '@mstar/models';
import type { SessionPool } from '@mstar/runtime';
import { createTokenizer, type TextTokenizer } from '@mstar/world';

/** A policy ready to generate. */
export interface LoadedPolicy {
  readonly ref: ModelRef;
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly runner: GenerationRunner;
  readonly executionProvider: string;
  readonly loadedAt: Date;
}

/** Turns an artifact-store prefix into a loaded policy; `unload` frees what it holds. */
export type PolicyLoader = ModelLoader<LoadedPolicy>;

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
        const model: LoadedPolicy = {
          ref,
          config: ckpt.config,
          tokenizer,
          runner: poolRunner(deps.pool, { decoder, embed, vision }),
          executionProvider: decoder.executionProviders[0] ?? 'cpu',
          loadedAt: now(),
        };
        return { model, unload };
      } catch (err) {
        await unload().catch(() => undefined);
        throw err;
      }
    },
  };
}
