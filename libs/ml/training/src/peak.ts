import { GraphBuilder, toModel } from '@mstar/graph';
import { createSession, type Feeds } from '@mstar/runtime';

/** Samples ONNX Runtime's fp32 MatMul throughput: the physical limit benchmarks compare against. */
export interface MatMulPeakProbe {
  /** GFLOP/s of the fastest of `runs` runs. */
  sample(runs: number): Promise<number>;
  release(): Promise<void>;
}

/**
 * The fp32 MatMul peak through ORT on this machine: a chain of `depth` [n,n]x[n,n] MatMuls in
 * one session run with `threads` intra-op threads (the benchmarks' own setting), so the number is
 * what ORT reaches on big GEMMs, not a datasheet figure. Machines here are shared, so benchmarks
 * sample it between their rounds and compare each round with the peak measured around it.
 */
export async function openMatMulPeakProbe(threads: number, n = 1024, depth = 8): Promise<MatMulPeakProbe> {
  const g = new GraphBuilder('peak');
  let x = g.input('a', 'float32', [n, n]);
  const b = g.input('b', 'float32', [n, n]);
  for (let i = 0; i < depth; i++) x = g.matmul(x, b);
  g.output(x, 'c');
  const session = await createSession(toModel(g), { device: 'cpu', intraOpThreads: threads });
  const feeds: Feeds = {
    a: { type: 'float32', dims: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => (i % 7) / 7) },
    b: { type: 'float32', dims: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => ((i % 5) - 2) / (5 * n)) },
  };
  await session.run(feeds);
  return {
    async sample(runs) {
      let best = Infinity;
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await session.run(feeds);
        best = Math.min(best, performance.now() - t0);
      }
      return (2 * n ** 3 * depth) / (best / 1000) / 1e9;
    },
    release: () => session.release(),
  };
}
