import { CancelledError } from '@mstar/errors';
import { initParams } from '@mstar/graph';
import { createRng } from '@mstar/metrics';
import { buildVisionPretrainingGraph, initWeights, numImageTokens, preprocessImage } from '@mstar/models';
import type { ModelConfig, ModelWeights } from '@mstar/models';
import { ParamStore } from '@mstar/optim';
import type { TrainerRuntime } from '@mstar/training';
import { CELL_CLASSES, GRID, cellLabels, randomScene, renderScene } from '@mstar/world';
import { RecipeConfigError } from './errors.js';
import { openTrainer, pixelFeed } from './warmup.js';

/** Vision-encoder pretraining on the world's perception corpus (see `pretrainVision`). */
export interface VisionPretrainingOptions {
  readonly config: ModelConfig;
  /** Optimizer steps, each on a fresh batch of random scenes. */
  readonly steps: number;
  /** Images per step. Default 32. */
  readonly batchSize?: number;
  /** AdamW learning rate after a 10-step linear ramp. Default 1e-3. */
  readonly lr?: number;
  /** Seeds the scenes and the head; without `initialWeights`, the policy's initial weights too. */
  readonly seed: number;
  /** The policy whose vision tower and projector are trained (the rest is returned unchanged). */
  readonly initialWeights?: ModelWeights;
  readonly runtime?: TrainerRuntime;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: { readonly step: number; readonly totalSteps: number; readonly loss: number }) => void;
}

export interface VisionPretrainingResult {
  /** The policy's weights with the pretrained vision tower and projector. */
  readonly weights: ModelWeights;
  readonly steps: number;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly seconds: number;
}

/**
 * Pretrains the policy's vision tower and projector the way a VLM's vision encoder is pretrained
 * before it meets the language model: every image feature is classified, through a linear head
 * that is then dropped, into what its cell holds (empty, or colour and shape or digit: the world's
 * CELL_CLASSES). The images are random scenes in the 'plain' style (the out-of-domain style stays
 * unseen) that ask nothing, so no benchmark question or answer is trained on.
 */
export async function pretrainVision(options: VisionPretrainingOptions): Promise<VisionPretrainingResult> {
  const { config, steps, seed } = options;
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(steps) || steps < 1) throw new RecipeConfigError(`vision pretraining steps must be an integer >= 1, got ${steps}`, { field: 'steps' });
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RecipeConfigError(`batchSize must be an integer >= 1, got ${batchSize}`, { field: 'batchSize' });
  const patches = numImageTokens(config);
  if (patches !== GRID * GRID) {
    throw new RecipeConfigError(`vision pretraining labels one world cell per image token: the model has ${patches} tokens, the world ${GRID * GRID} cells`, { field: 'config' });
  }
  const graph = buildVisionPretrainingGraph(config, CELL_CLASSES);
  const policy = options.initialWeights ?? initWeights(config, 'policy', seed);
  // Every graph parameter is drawn (in graph order) and the policy's replace theirs: the head's values
  // depend on that order, and the measured runs in docs/results.md were made with it.
  const params = initParams(graph.graph.params.values(), seed);
  const store = ParamStore.fromTensors(
    Object.fromEntries([...graph.graph.params.values()].map((p) => [p.value.name, { shape: p.value.shape as number[], data: policy.get(p.value.name) ?? params.get(p.value.name)! }])),
  );
  const trainer = await openTrainer(graph, { params: store }, { schedule: { kind: 'linear-warmup', lr: options.lr ?? 1e-3, warmupSteps: Math.min(10, steps) } }, options.runtime, () => batchSize * patches);
  const rng = createRng(seed);
  const started = performance.now();
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  try {
    for (let step = 1; step <= steps; step++) {
      if (options.signal?.aborted === true) throw new CancelledError('vision pretraining was cancelled', { cause: options.signal.reason });
      const scenes = Array.from({ length: batchSize }, () => randomScene(rng));
      const targets = BigInt64Array.from(scenes.flatMap((s) => cellLabels(s).map(BigInt)));
      const result = await trainer.step([
        {
          pixel_values: pixelFeed(scenes.map((s) => ({ pixels: preprocessImage(renderScene(s, 'plain'), config) })), config),
          targets: { type: 'int64', dims: [batchSize, patches], data: targets },
          loss_weights: { type: 'float32', dims: [batchSize, patches], data: new Float32Array(batchSize * patches).fill(1) },
        },
      ]);
      if (step === 1) firstLoss = result.loss;
      lastLoss = result.loss;
      options.onProgress?.({ step, totalSteps: steps, loss: result.loss });
    }
    const weights: ModelWeights = new Map(policy);
    for (const name of weights.keys()) if (trainer.params.layout.has(name)) weights.set(name, trainer.params.view(name).slice());
    return { weights, steps, firstLoss, lastLoss, seconds: (performance.now() - started) / 1000 };
  } finally {
    await trainer.close();
  }
}
