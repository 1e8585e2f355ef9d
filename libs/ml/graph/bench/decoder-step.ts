// Forward+backward step time of a ~5M-param Llama-style decoder on ORT CPU, against a measured MatMul
// peak; with --profile, where the time goes by op type (ORT's profiler).
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  buildDecoderTrainingGraph,
  decoderParamCount,
  decoderTrainingFlops,
  GraphBuilder,
  initParams,
  toModel,
  type DecoderConfig,
} from '../src/index.js';

const profile = process.argv.includes('--profile');
const steps = 5;

/** Wall time of each of `n` runs in ms. The machine is shared, so callers report the minimum (least disturbed) and the median. */
async function timeRuns(run: () => Promise<unknown>, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}

/** GFLOP/s of a chain of `depth` [m, k] x [k, k] MatMuls in one run (amortizes per-run overhead). */
async function matmulPeak(m: number, k: number, depth: number): Promise<number> {
  const g = new GraphBuilder('peak');
  let x = g.input('a', 'float32', [m, k]);
  const b = g.input('b', 'float32', [k, k]);
  for (let i = 0; i < depth; i++) x = g.matmul(x, b);
  g.output(x, 'c');
  const s = await ort.InferenceSession.create(toModel(g));
  const feeds = {
    a: new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => (i % 7) / 7), [m, k]),
    b: new ort.Tensor('float32', Float32Array.from({ length: k * k }, (_, i) => ((i % 5) - 2) / (5 * k)), [k, k]),
  };
  for (let i = 0; i < 2; i++) await s.run(feeds);
  const sec = Math.min(...(await timeRuns(() => s.run(feeds), 5))) / 1000;
  await s.release();
  return (2 * m * k * k * depth) / sec / 1e9;
}

const config: DecoderConfig = { vocab: 4096, dModel: 256, layers: 4, heads: 8, kvHeads: 4, ffn: 688, seq: 256, batch: 8 };
const tokens = 8 * 256;
const { graph } = buildDecoderTrainingGraph(config);
const model = toModel(graph, { params: 'inputs' });
const profilePrefix = `mstar-decoder-profile-${process.pid}`;
const profileFile = join(tmpdir(), profilePrefix);
const session = await ort.InferenceSession.create(model, profile ? { enableProfiling: true, profileFilePrefix: profileFile } : {});
const weights = initParams(graph.params.values(), 1);
const feeds: Record<string, ort.Tensor> = Object.fromEntries(
  [...weights].map(([n, w]) => [n, new ort.Tensor(w as Float32Array, [...(graph.params.get(n)?.shape ?? [])])]),
);
const ids = BigInt64Array.from({ length: tokens }, (_, i) => BigInt((i * 7919) % config.vocab));
feeds.input_ids = new ort.Tensor('int64', ids, [8, 256]);
feeds.targets = new ort.Tensor('int64', ids, [8, 256]);
feeds.attention_mask = new ort.Tensor('float32', new Float32Array(tokens).fill(1), [8, 256]);
feeds.loss_weights = new ort.Tensor('float32', new Float32Array(tokens).fill(1), [8, 256]);

for (let i = 0; i < 2; i++) await session.run(feeds);
const times = (await timeRuns(() => session.run(feeds), steps)).sort((a, b) => a - b);
const ms = times[0] as number;
const median = times[Math.floor(steps / 2)] as number;
const flops = decoderTrainingFlops(config, tokens);
const peak = await matmulPeak(2048, 512, 16);
const achieved = flops / (ms / 1000) / 1e9;
console.log(
  JSON.stringify({
    params: decoderParamCount(config),
    nodes: graph.nodes.length,
    tokensPerStep: tokens,
    msPerStepMin: Number(ms.toFixed(1)),
    msPerStepMedian: Number(median.toFixed(1)),
    tokensPerSecond: Math.round(tokens / (ms / 1000)),
    gflopPerStep: Number((flops / 1e9).toFixed(2)),
    achievedGflops: Number(achieved.toFixed(2)),
    matmulPeakGflops: Number(peak.toFixed(2)),
    ratio: Number((achieved / peak).toFixed(3)),
  }),
);

if (profile) {
  // endProfiling() returns nothing in onnxruntime-node: ORT appends a timestamp to the prefix.
  session.endProfiling();
  await session.release();
  const name = (await readdir(tmpdir())).find((f) => f.startsWith(profilePrefix));
  if (name === undefined) throw new Error(`no ORT profile ${profilePrefix}* in ${tmpdir()}`);
  const file = join(tmpdir(), name);
  const events = JSON.parse(await readFile(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  const byNode = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    byNode.set(e.name, (byNode.get(e.name) ?? 0) + e.dur);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${op.padEnd(24)} ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000 / (steps + 2)).toFixed(1)} ms/step`);
  }
  // ORT keeps our node names unless it fused the node away.
  const describe = (name: string): string => {
    const node = graph.nodes.find((n) => n.name === name);
    if (node === undefined) return '(fused by ORT)';
    const shape = (v: { shape: readonly (number | string)[] } | undefined): string => (v === undefined ? '-' : `[${v.shape.join(',')}]`);
    return `${node.inputs.map(shape).join(' ')} -> ${node.outputs.map(shape).join(' ')}`;
  };
  console.log('slowest nodes:');
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    const name = node.replace('_kernel_time', '');
    console.log(`${name.padEnd(28)} ${(us / 1000 / (steps + 2)).toFixed(1).padStart(7)} ms/step  ${describe(name)}`);
  }
  await rm(file, { force: true });
} else {
  await session.release();
}
