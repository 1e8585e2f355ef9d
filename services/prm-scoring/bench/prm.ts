// `npm run bench:prm`: scores 512 CoT responses (32 prompts x 16, about 30 response tokens each) with
// the REFERENCE-config PRM through the real service path (gRPC on port 0, worker pool, batcher), as
// 32 concurrent ScoreSteps calls of 16 responses, the way a pipeline stage fans out. Reports responses/s
// and achieved GFLOP/s against ONNX Runtime's fp32 MatMul peak measured in the same process, plus the
// same batches run directly on this thread (the engine's ceiling, no gRPC / pool / batcher).
// The LAST line is a JSON object: responses_per_s, gflops, peak_gflops, ratio_vs_peak, ...
// The machine is shared, so the peak is sampled between every two rounds and each round is compared
// with the better of the samples around it; the medians over rounds are reported.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { commonV1, type prmV1 } from '@mstar/contracts';
import { formatCot, splitSteps } from '@mstar/cot';
import { createRng } from '@mstar/metrics';
import { exportOnnx, initWeights, numImageTokens, ONNX_FILES, prmWeightsFromPolicy, REFERENCE_CONFIG, saveCheckpoint, storeCheckpointIO } from '@mstar/models';
import { promptIds, prmResponseIds } from '@mstar/recipes';
import { createSession } from '@mstar/runtime';
import { createFsArtifactStore } from '@mstar/stores';
import { openMatMulPeakProbe } from '@mstar/training';
import { createLogger, createMetrics } from '@mstar/telemetry';
import { buildWorldTokenizer, createWorldTokenizer, encodePng, generateSplit, renderScene } from '@mstar/world';
import { createPrmClient, loadConfig, prepareRows, prmForwardFlops, scoringBatch, startPrmScoring, stepScores, type LoadedPrm } from '../src/index.js';

const THREADS = 2;
const PROMPTS = 32;
const K = 16;
const BATCH = Number(process.env['MAX_BATCH_RESPONSES'] ?? 64);
const ROUNDS = 4;
const config = REFERENCE_CONFIG;
const log = (line: string): void => console.log(line);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

// The workload: 32 validation prompts; 16 responses each, made of gold CoT steps of other problems
// drawn until the steps reach about 30 tokens (an untrained policy's samples are about that long).
const tokenizer = createWorldTokenizer();
const problems = generateSplit('validation', { seed: 1, size: 400 });
const stepPool = problems.flatMap((p) => splitSteps(p.cot));
const rng = createRng(7);
function response(): string {
  const steps: string[] = [];
  while (steps.length === 0 || tokenizer.encode(steps.join('\n\n')).length < 26) steps.push(rng.pick(stepPool));
  return formatCot(steps, String(rng.int(10)));
}
const requests: prmV1.ScoreStepsRequest[] = problems.slice(0, PROMPTS).map((p) => ({
  prompts: [{ promptId: p.id, image: Buffer.from(encodePng(renderScene(p.scene, p.style))), question: p.question, responsePrefix: '' }],
  targets: Array.from({ length: K }, () => ({ promptIndex: 0, response: response() })),
  aggregation: commonV1.Aggregation.MIN,
  prm: undefined,
}));
const responses = PROMPTS * K;
const positions = requests.flatMap((r) => {
  const prompt = promptIds(tokenizer, r.prompts[0]?.question ?? '').length + numImageTokens(config) - 1;
  return r.targets.map((t) => prompt + prmResponseIds(tokenizer, t.response).length);
});
const responseTokens = requests.flatMap((r) => r.targets.map((t) => prmResponseIds(tokenizer, t.response).length));
const flopsPerRound = positions.reduce((sum, n) => sum + prmForwardFlops(config, n), 0);
log(`REFERENCE PRM, ${responses} responses (${PROMPTS} prompts x ${K}); response tokens mean ${(responseTokens.reduce((a, b) => a + b, 0) / responses).toFixed(1)}, sequence (image + prompt + response) mean ${(positions.reduce((a, b) => a + b, 0) / responses).toFixed(1)}`);
log(`${(flopsPerRound / 1e9).toFixed(1)} GFLOP per round (${(flopsPerRound / responses / 1e6).toFixed(0)} MFLOP per response); batch ${BATCH} responses, 1 worker x ${THREADS} intra-op threads`);
log(`load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const weights = prmWeightsFromPolicy(config, initWeights(config, 'policy', 1), 2);
const root = await mkdtemp(join(tmpdir(), 'bench-prm-'));
const artifacts = await createFsArtifactStore({ root });
const prefix = 'runs/bench/checkpoints/prm/v0';
await saveCheckpoint(storeCheckpointIO(artifacts, prefix), { kind: 'prm', config, weights, tokenizer: buildWorldTokenizer() }, { onnx: false });

const peakProbe = await openMatMulPeakProbe(THREADS);
const peaks: number[] = [await peakProbe.sample(6)];
log(`fp32 MatMul peak (1024³ chain x8, best of 6): ${(peaks[0] as number).toFixed(1)} GFLOP/s`);

const metrics = createMetrics({ service: 'bench-prm', defaultMetrics: false });
const service = await startPrmScoring({
  config: loadConfig({ GRPC_PORT: '0', INITIAL_CHECKPOINT: prefix, RUN_ID: 'bench', WORKERS: '1', INTRA_OP_THREADS: String(THREADS), MAX_BATCH_RESPONSES: String(BATCH), LOG_LEVEL: 'silent' }),
  artifacts,
  logger: createLogger({ service: 'bench-prm', level: 'silent' }),
  metrics,
});
await service.ready;
const client = createPrmClient(`127.0.0.1:${service.port}`);
const round = async (): Promise<{ ms: number; answers: prmV1.ScoreStepsResponse[] }> => {
  const t0 = performance.now();
  const answers = await Promise.all(requests.map((r) => client.scoreSteps(r)));
  return { ms: performance.now() - t0, answers };
};
const counter = async (name: string): Promise<number> => (await metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;

let roundMs: number[] = [];
let first: prmV1.ScoreStepsResponse[] = [];
let paddingEfficiency = 0;
let servicePeakRssMb = 0;
try {
  first = (await round()).answers;
  const [tokens0, padded0] = [await counter('mstar_prm_scored_tokens_total'), await counter('mstar_prm_padded_tokens_total')];
  for (let i = 0; i < ROUNDS; i++) {
    const { ms } = await round();
    roundMs.push(ms);
    peaks.push(await peakProbe.sample(1));
    log(`[service] round ${i + 1}: ${ms.toFixed(0)} ms, ${((responses / ms) * 1000).toFixed(0)} responses/s`);
  }
  paddingEfficiency = ((await counter('mstar_prm_scored_tokens_total')) - tokens0) / ((await counter('mstar_prm_padded_tokens_total')) - padded0);
  servicePeakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
} finally {
  client.close();
  await service.close();
}

// The same batches straight through an in-thread session: what the graph alone costs.
const session = await createSession(exportOnnx(config, 'prm', weights).get(ONNX_FILES.prmScores) as Uint8Array, { device: 'cpu', intraOpThreads: THREADS });
const prm: LoadedPrm = {
  ref: { runId: 'bench', version: 0 },
  config,
  tokenizer,
  runner: { run: async (feeds) => (await session.run(feeds, ['scores']))['scores']?.data as Float32Array },
  executionProvider: 'cpu',
  loadedAt: new Date(),
};
const allRows = (await Promise.all(requests.map((r) => prepareRows(r, prm)))).flat().sort((a, b) => b.length - a.length);
const directMs: number[] = [];
let directScores: number[][] = [];
for (let i = 0; i < 2; i++) {
  const t0 = performance.now();
  const out: number[][] = [];
  for (let at = 0; at < allRows.length; at += BATCH) {
    const batch = scoringBatch(allRows.slice(at, at + BATCH));
    out.push(...stepScores(await prm.runner.run(batch.feeds), batch));
  }
  directMs.push(performance.now() - t0);
  directScores = out;
}
await session.release();
peaks.push(await peakProbe.sample(6));
await peakProbe.release();
await artifacts.close();
await rm(root, { recursive: true, force: true });

const served = first.flatMap((a) => a.scores);
const stepCount = served.reduce((n, s) => n + s.stepCount, 0);
if (served.length !== responses || directScores.reduce((n, s) => n + s.length, 0) !== stepCount) throw new Error('the service and the direct run scored different numbers of steps');
log(`fp32 MatMul peak samples: ${peaks.map((p) => p.toFixed(0)).join(' ')} GFLOP/s`);
// Round i ran between peak samples i and i + 1.
const ratios = roundMs.map((ms, i) => flopsPerRound / (ms / 1000) / 1e9 / Math.max(peaks[i] as number, peaks[i + 1] as number));
const ms = median(roundMs);
const gflops = flopsPerRound / (ms / 1000) / 1e9;
const direct = median(directMs);
log(`service round median ${ms.toFixed(0)} ms (${roundMs.map((x) => x.toFixed(0)).join(', ')}); direct in-thread ${direct.toFixed(0)} ms; padding efficiency ${(100 * paddingEfficiency).toFixed(1)}%`);
log(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
roundMs = roundMs.map((x) => Number(x.toFixed(1)));
console.log(
  JSON.stringify({
    responses_per_s: Math.round((responses / ms) * 1000),
    gflops: Number(gflops.toFixed(1)),
    peak_gflops: Number(median(roundMs.map((_, i) => Math.max(peaks[i] as number, peaks[i + 1] as number))).toFixed(1)),
    ratio_vs_peak: Number(median(ratios).toFixed(3)),
    peak_gflops_best: Number(Math.max(...peaks).toFixed(1)),
    tokens_per_s: Math.round((positions.reduce((a, b) => a + b, 0) / ms) * 1000),
    responses,
    steps_scored: stepCount,
    mean_response_tokens: Number((responseTokens.reduce((a, b) => a + b, 0) / responses).toFixed(1)),
    mean_sequence_positions: Number((positions.reduce((a, b) => a + b, 0) / responses).toFixed(1)),
    gflop_per_round: Number((flopsPerRound / 1e9).toFixed(2)),
    padding_efficiency: Number(paddingEfficiency.toFixed(3)),
    direct_responses_per_s: Math.round((responses / direct) * 1000),
    direct_gflops: Number((flopsPerRound / (direct / 1000) / 1e9).toFixed(1)),
    service_vs_direct: Number((direct / ms).toFixed(3)),
    round_ms: roundMs,
    batch_responses: BATCH,
    workers: 1,
    intra_op_threads: THREADS,
    peak_rss_mb: servicePeakRssMb,
    load_avg: loadavg().map((x) => Number(x.toFixed(2))),
  }),
);
