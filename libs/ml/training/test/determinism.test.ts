import { describe, expect, it } from 'vitest';
import { GraphBuilder, buildTrainingGraph, seededRandom, toModel } from '@mstar/graph';
import { createSession } from '@mstar/runtime';

describe('gradients with several intra-op threads', () => {
  it('sums the embedding gradient of repeated ids exactly and identically on every run', async () => {
    // Many tokens over few ids, as in a real batch: every row of the table gets ~64 contributions.
    const [vocab, width, tokens] = [64, 256, 4096];
    const g = new GraphBuilder('embedding');
    const ids = g.input('ids', 'int64', [tokens]);
    const weights = g.input('weights', 'float32', [tokens, width]);
    const table = g.param('table', [vocab, width]);
    buildTrainingGraph(g, { loss: g.sumAll(g.mul(g.gather(table, ids, 0), weights)) });
    const session = await createSession(toModel(g, { params: 'inputs' }), { device: 'cpu', intraOpThreads: 2 });

    const rand = seededRandom(3);
    const idData = BigInt64Array.from({ length: tokens }, () => BigInt(Math.floor(rand() * vocab)));
    // Multiples of 2^-10 well inside float32's range: every partial sum is exact, in any order.
    const w = Float32Array.from({ length: tokens * width }, () => Math.round((rand() - 0.5) * 64) / 1024);
    const expected = new Float32Array(vocab * width);
    for (let t = 0; t < tokens; t++) {
      const row = Number(idData[t]);
      for (let j = 0; j < width; j++) expected[row * width + j] = expected[row * width + j]! + w[t * width + j]!;
    }
    const feeds = {
      ids: { type: 'int64' as const, dims: [tokens], data: idData },
      weights: { type: 'float32' as const, dims: [tokens, width], data: w },
      table: { type: 'float32' as const, dims: [vocab, width], data: new Float32Array(vocab * width) },
    };
    try {
      for (let run = 0; run < 12; run++) {
        const grad = (await session.run(feeds, ['grad.table']))['grad.table']!.data as Float32Array;
        let wrong = 0;
        for (let i = 0; i < grad.length; i++) if (grad[i] !== expected[i]) wrong++;
        expect(wrong, `run ${run}: elements of the embedding gradient that differ from the exact sum`).toBe(0);
      }
    } finally {
      await session.release();
    }
  });
});
