import { buildPrmBatch, GRAPH_IO } from '@mstar/models';
import type { Feeds } from '@mstar/runtime';
import type { Logger } from '@mstar/telemetry';
import type { ScoreRow } from './inputs.js';
import type { PrmMetrics } from './metrics.js';

/** The feeds of one `prm_scores.onnx` run and where each row's step scores are read. */
export interface ScoringBatch {
  readonly feeds: Feeds;
  readonly seq: number;
  /** Per row, the columns of its step boundaries, in step order. */
  readonly boundaries: readonly (readonly number[])[];
}

/**
 * One batch of rows of the same PRM: right-padded exactly as PRM training pads (`buildPrmBatch`),
 * so the scores are read at the positions where training reads its labels. The labels are
 * placeholders: only the boundaries and the token feeds are used.
 */
export function scoringBatch(rows: readonly ScoreRow[]): ScoringBatch {
  const first = rows[0];
  if (first === undefined) throw new Error('a scoring batch needs at least one row');
  const { config, tokenizer } = first.prm;
  const batch = buildPrmBatch(
    rows.map((r) => ({ prompt: r.prompt, response: r.response, labels: new Array<number>(r.steps).fill(0) })),
    config,
    tokenizer.stepSeparatorId,
    'right',
  );
  const { channels, imageSize } = config.vision;
  const perImage = channels * imageSize * imageSize;
  const pixels = new Float32Array(rows.length * perImage);
  rows.forEach((r, i) => pixels.set(r.pixels, i * perImage));
  const dims = [batch.batch, batch.seq];
  return {
    feeds: {
      [GRAPH_IO.pixelValues]: { type: 'float32', dims: [rows.length, channels, imageSize, imageSize], data: pixels },
      [GRAPH_IO.inputIds]: { type: 'int64', dims, data: batch.inputIds },
      [GRAPH_IO.attentionMask]: { type: 'int64', dims, data: batch.attentionMask },
    },
    seq: batch.seq,
    boundaries: batch.boundaries,
  };
}

/** Each row's step scores from the graph's scores [batch, seq]. */
export function stepScores(scores: Float32Array, batch: Pick<ScoringBatch, 'seq' | 'boundaries'>): number[][] {
  return batch.boundaries.map((columns, r) => columns.map((c) => scores[r * batch.seq + c] as number));
}

/** Runs batches of rows through their PRM's graph: one forward pass, one row per response. */
export function createBatchRunner(deps: { metrics?: PrmMetrics | undefined; logger: Logger; now?: () => number }) {
  const now = deps.now ?? ((): number => performance.now());
  return async (rows: readonly ScoreRow[], requests: number): Promise<number[][]> => {
    const batch = scoringBatch(rows);
    const prm = (rows[0] as ScoreRow).prm;
    const started = now();
    const scores = await prm.runner.run(batch.feeds);
    const seconds = (now() - started) / 1000;
    const tokens = rows.reduce((n, r) => n + r.length, 0);
    deps.metrics?.batch({ requests, rows: rows.length, tokens, paddedTokens: rows.length * batch.seq, seconds });
    deps.logger.debug({ requests, rows: rows.length, tokens, seq: batch.seq, seconds, version: prm.ref.version }, 'batch scored');
    return stepScores(scores, batch);
  };
}
