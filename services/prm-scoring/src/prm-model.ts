import type { ModelLoader, ModelRef } from '@mstar/bootstrap';
import { exportOnnx, GRAPH_IO, loadCheckpoint, ONNX_FILES, storeCheckpointIO, type ArtifactStoreLike, type ModelConfig } from '@mstar/models';
import type { Feeds, SessionPool } from '@mstar/runtime';
import { createTokenizer, type TextTokenizer } from '@mstar/world';

/**
 * Runs `prm_scores.onnx` once: feeds pixel_values [batch, C, H, W], input_ids and attention_mask
 * [batch, seq] (int64, image tokens expanded); resolves with scores [batch, seq], row-major.
 */
export interface PrmRunner {
  run(feeds: Feeds): Promise<Float32Array>;
}

/** A PRM ready to score. */
export interface LoadedPrm {
  readonly ref: ModelRef;
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly runner: PrmRunner;
  readonly executionProvider: string;
  readonly loadedAt: Date;
}

/** The pool key of a version's scoring graph. */
function poolKey(ref: ModelRef): string {
  return `prm/${ref.runId}/v${ref.version}/scores`;
}

/**
 * Loads PRM checkpoints from the artifact store into the worker pool. Only the scoring graph is
 * loaded: it holds the vision encoder and the embeddings itself, so one run scores a whole batch.
 */
export function createPoolLoader(deps: { store: ArtifactStoreLike; pool: SessionPool; now?: () => Date }): ModelLoader<LoadedPrm> {
  const now = deps.now ?? ((): Date => new Date());
  return {
    async load(ref, prefix) {
      const ckpt = await loadCheckpoint(storeCheckpointIO(deps.store, prefix), { kind: 'prm' });
      const tokenizer = createTokenizer(ckpt.tokenizer);
      // The graphs are a function of config and weights: exporting them again cannot disagree with
      // the weights, and is cheaper than reading a second copy from the store.
      const graph = exportOnnx(ckpt.config, 'prm', ckpt.weights).get(ONNX_FILES.prmScores) as Uint8Array;
      const key = poolKey(ref);
      const loaded = await deps.pool.load(key, graph);
      const model: LoadedPrm = {
        ref,
        config: ckpt.config,
        tokenizer,
        runner: {
          async run(feeds) {
            const scores = (await deps.pool.run(key, feeds, [GRAPH_IO.scores]))[GRAPH_IO.scores];
            if (scores?.type !== 'float32') throw new Error(`${key} returned no float32 '${GRAPH_IO.scores}' output`);
            return scores.data;
          },
        },
        executionProvider: loaded.executionProviders[0] ?? 'cpu',
        loadedAt: now(),
      };
      return { model, unload: () => deps.pool.unload(key) };
    },
  };
}
