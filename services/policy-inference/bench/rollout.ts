/**
 * Rollout throughput of the REFERENCE policy: P prompts x K samples at temperature T, generated
 * tokens/s of
 *  (a) the service path: startPolicyInference (checkpoint in a temporary artifact store, 1 pool
 *      worker) called through createPolicyClient, one Generate call per --request-prompts image
 *      prompts, the calls of a group in flight together (the scheduler batches them into one wave);
 *  (b) our engine (@mstar/generation `generate`, in-thread sessions) with the KV cache and prefix
 *      sharing off (`useKvCache: false`) on --nocache-prompts image prompts of each group, and the
 *      cached engine on the same prompts (same seeds: the tokens must be identical);
 *  (c) @huggingface/transformers `generate` (do_sample, top_k 0, K rows per prompt) on the same
 *      exported language model (the checkpoint's language_model/ folder) with text-only prompts,
 *      and our engine on the same text-only prompts and batch sizes: the like-for-like pair.
 * The prompts are cut into groups of --group-prompts and every contender runs each group in turn,
 * so that load from other jobs on a shared machine hits all of them alike.
 * Generated tokens are counted the same way everywhere: the tokens of each sample up to and
 * including its first `</s>`. Only generation is timed (not model loading or warm-up).
 *
 *   npm run bench:rollout [-- --checkpoint DIR --prompts 64 --k 16 --max-new-tokens 48 ...]
 *
 * Progress lines go to stderr; the last stdout line is the result JSON.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AutoModelForCausalLM, env as transformersEnv, Tensor } from '@huggingface/transformers';
import { commonV1, policyV1 } from '@mstar/contracts';
import { generate, type GenerateRequest, type GenerationPrompt, type GenerationRunner } from '@mstar/generation';
import { CHECKPOINT_FILES, saveCheckpoint, storeCheckpointIO } from '@mstar/models';
import { openPolicy, type EvalItem } from '@mstar/recipes';
import { createFsArtifactStore, type ArtifactStore } from '@mstar/stores';
import { createLogger } from '@mstar/telemetry';
import { encodePng } from '@mstar/world';
import { createPolicyClient, loadConfig, startPolicyInference } from '../src/index.js';
import { benchItems, benchPolicy, chunks, imagePrompt, log, numberArg, peakRssMb, textIds, type BenchPolicy } from './common.js';

const { values } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    prompts: { type: 'string', default: '64' },
    k: { type: 'string', default: '16' },
    temperature: { type: 'string', default: '1' },
    'max-new-tokens': { type: 'string', default: '48' },
    seed: { type: 'string', default: '1' },
    'group-prompts': { type: 'string', default: '16' },
    'request-prompts': { type: 'string', default: '8' },
    'wave-rows': { type: 'string', default: '256' },
    workers: { type: 'string', default: '1' },
    'intra-op-threads': { type: 'string', default: '2' },
    'nocache-prompts': { type: 'string', default: '1' },
    'engine-prompts': { type: 'string', default: '8' },
    'tjs-prompts': { type: 'string', default: '8' },
  },
});
const P = numberArg(values, 'prompts');
const K = numberArg(values, 'k');
const temperature = numberArg(values, 'temperature');
const maxNewTokens = numberArg(values, 'max-new-tokens');
const seed = numberArg(values, 'seed');
const intraOpThreads = numberArg(values, 'intra-op-threads');
const PREFIX = 'runs/bench/checkpoints/policy/1';
const policy = await benchPolicy(values.checkpoint);
const items = benchItems(P);
log({ phase: 'setup', policy: policy.source, prompts: P, k: K, temperature, maxNewTokens });

interface Measured {
  readonly tokens: number;
  readonly samples: number;
  readonly seconds: number;
  readonly tps: number;
  /** Samples that ended without `</s>` (max_new_tokens). */
  readonly truncated: number;
}

/** Sums what one contender generated over the groups. */
function tally() {
  let tokens = 0;
  let samples = 0;
  let seconds = 0;
  let truncated = 0;
  return {
    add(m: { tokens: number; samples: number; seconds: number; truncated: number }): void {
      tokens += m.tokens;
      samples += m.samples;
      seconds += m.seconds;
      truncated += m.truncated;
    },
    result: (): Measured => ({ tokens, samples, seconds: +seconds.toFixed(3), tps: Math.round(tokens / seconds), truncated }),
  };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

/** (a) the service in this process, called over gRPC on loopback. */
async function startService(store: ArtifactStore) {
  const service = await startPolicyInference({
    config: loadConfig({
      GRPC_PORT: '0',
      LOG_LEVEL: 'silent',
      INITIAL_CHECKPOINT: PREFIX,
      WORKERS: String(values.workers),
      INTRA_OP_THREADS: String(intraOpThreads),
      MAX_WAVE_ROWS: String(values['wave-rows']),
      MAX_SAMPLES: String(Math.max(K, 64)),
    }),
    artifacts: store,
    logger: createLogger({ service: 'bench-rollout', level: 'silent' }),
  });
  const client = createPolicyClient(`127.0.0.1:${service.port}`);
  await service.ready;
  const call = async (prompts: commonV1.Prompt[], numSamples: number, tokens: number) => {
    let sum = 0;
    let completions = 0;
    let truncated = 0;
    for await (const c of client.generate({ prompts, numSamples, temperature, topP: 1, maxNewTokens: tokens, seed })) {
      sum += c.tokenCount;
      completions++;
      if (c.finishReason !== policyV1.FinishReason.EOS) truncated++;
    }
    return { tokens: sum, samples: completions, truncated };
  };
  const toPrompt = (item: EvalItem, id: string): commonV1.Prompt => commonV1.Prompt.fromPartial({ promptId: id, image: Buffer.from(encodePng(item.image)), question: item.question });
  // The first graph runs pay ORT's one-off allocations: warm up outside the timed window.
  await call([toPrompt(items[0] as EvalItem, 'warm-up')], 2, 4);
  return {
    /** The group's Generate calls, all in flight at once; timed from the first call to the last completion. */
    async group(group: readonly EvalItem[], offset: number) {
      const calls = chunks(
        group.map((item, i) => toPrompt(item, `p${offset + i}`)),
        numberArg(values, 'request-prompts'),
      );
      const { value, seconds } = await timed(() => Promise.all(calls.map((prompts) => call(prompts, K, maxNewTokens))));
      const m = { tokens: 0, samples: 0, truncated: 0, seconds };
      for (const v of value) {
        m.tokens += v.tokens;
        m.samples += v.samples;
        m.truncated += v.truncated;
      }
      if (m.samples !== group.length * K) throw new Error(`the service returned ${m.samples} completions, expected ${group.length * K}`);
      return m;
    },
    async close() {
      client.close();
      await service.close();
    },
  };
}

/** Our engine on in-thread sessions: (b) and our side of (c). */
async function openEngine(p: BenchPolicy) {
  const opened = await openPolicy(p.config, p.weights, { intraOpThreads });
  const request: Omit<GenerateRequest, 'prompts'> = {
    numSamples: K,
    temperature,
    topP: 1,
    maxNewTokens,
    seed,
    eosId: p.config.tokens.eos,
    padId: p.config.tokens.pad,
    imageTokenId: p.config.tokens.image,
    maxContext: p.config.text.maxPositionEmbeddings,
  };
  const run = async (runner: GenerationRunner, prompts: GenerationPrompt[], useKvCache: boolean) => {
    const { value, seconds } = await timed(() => generate(runner, { ...request, prompts, useKvCache }));
    const sequences = value.sequences.flat();
    return {
      tokens: value.stats.generatedTokens,
      samples: sequences.length,
      truncated: sequences.filter((s) => s.finishReason !== 'eos').length,
      seconds,
      key: JSON.stringify(sequences.map((s) => s.tokens)),
    };
  };
  await generate(opened.runner, { ...request, prompts: [imagePrompt(items[0] as EvalItem, p, 'warm-up')], numSamples: 2, maxNewTokens: 4 });
  return {
    /** Text-only prompts, --engine-prompts per generate call (the batches transformers.js gets). */
    async text(group: readonly EvalItem[], offset: number) {
      const m = { tokens: 0, samples: 0, truncated: 0, seconds: 0 };
      const perCall = numberArg(values, 'engine-prompts');
      for (const [c, chunk] of chunks(group, perCall).entries()) {
        const prompts = chunk.map((item, i) => ({ id: `${seed}/t${offset + c * perCall + i}`, inputIds: textIds(item, p) }));
        const r = await run(opened.runner, prompts, true);
        m.tokens += r.tokens;
        m.samples += r.samples;
        m.truncated += r.truncated;
        m.seconds += r.seconds;
      }
      return m;
    },
    /** The same image prompts with and without the KV cache; returns both and whether their tokens agree. */
    async cachePair(group: readonly EvalItem[], offset: number) {
      const prompts = group.map((item, i) => imagePrompt(item, p, `${seed}/p${offset + i}`));
      const cached = await run(opened.runner, prompts, true);
      const nocache = await run(opened.runner, prompts, false);
      return { cached, nocache, same: cached.key === nocache.key };
    },
    close: () => opened.close(),
  };
}

/**
 * (c) transformers.js on the checkpoint's language_model/ folder. Its `generate` (4.3.1) keeps
 * every row sampling until all rows end on `</s>` at the same step or reach max_new_tokens, and
 * does not expand `num_return_sequences` itself: each prompt is then repeated K times (left-padded,
 * as Hugging Face's `_expand_inputs_for_generation` does); a probe checks which is the case.
 */
async function openTransformersJs(checkpointDir: string, p: BenchPolicy) {
  transformersEnv.allowRemoteModels = false;
  transformersEnv.allowLocalModels = true;
  transformersEnv.localModelPath = checkpointDir;
  const model = await AutoModelForCausalLM.from_pretrained(CHECKPOINT_FILES.languageModelDir, {
    dtype: 'fp32',
    device: 'cpu',
    session_options: { intraOpNumThreads: intraOpThreads },
  });
  const { pad, eos } = p.config.tokens;
  const run = async (rows: readonly number[][], tokens: number) => {
    const width = Math.max(...rows.map((ids) => ids.length));
    const ids = new BigInt64Array(rows.length * width).fill(BigInt(pad));
    const mask = new BigInt64Array(rows.length * width);
    rows.forEach((row, r) => {
      row.forEach((id, j) => {
        ids[r * width + width - row.length + j] = BigInt(id);
        mask[r * width + width - row.length + j] = 1n;
      });
    });
    const out = (await model.generate({
      input_ids: new Tensor('int64', ids, [rows.length, width]),
      attention_mask: new Tensor('int64', mask, [rows.length, width]),
      max_new_tokens: tokens,
      do_sample: true,
      temperature,
      top_k: 0,
      num_return_sequences: K,
    })) as Tensor;
    return { out, width };
  };
  // The probe doubles as the warm-up.
  const probe = await run([textIds(items[0] as EvalItem, p)], 2);
  const expandsItself = probe.out.dims[0] === K;
  return {
    expandsItself,
    /** Returns the useful tokens (up to the first `</s>`) and every token it sampled. */
    async group(group: readonly EvalItem[]) {
      const useful = { tokens: 0, samples: 0, truncated: 0, seconds: 0 };
      const all = { ...useful };
      for (const chunk of chunks(group, numberArg(values, 'tjs-prompts'))) {
        const texts = chunk.map((item) => textIds(item, p));
        const rows = expandsItself ? texts : texts.flatMap((ids) => Array.from({ length: K }, () => ids));
        const { value, seconds } = await timed(() => run(rows, maxNewTokens));
        const { out, width } = value;
        const [n, total] = out.dims as [number, number];
        if (n !== chunk.length * K) throw new Error(`transformers.js returned ${n} rows, expected ${chunk.length * K}`);
        const data = out.data as BigInt64Array;
        for (let r = 0; r < n; r++) {
          const generated = Array.from(data.subarray(r * total + width, (r + 1) * total), Number);
          const end = generated.indexOf(eos);
          useful.tokens += end < 0 ? generated.length : end + 1;
          if (end < 0) useful.truncated++;
          all.tokens += generated.length;
        }
        useful.samples += n;
        useful.seconds += seconds;
      }
      return { useful, all: { ...all, samples: useful.samples, truncated: useful.truncated, seconds: useful.seconds } };
    },
    close: () => model.dispose(),
  };
}

const root = await mkdtemp(join(tmpdir(), 'mstar-bench-rollout-'));
const store = await createFsArtifactStore({ root });
const closers: (() => Promise<unknown>)[] = [];
try {
  // saveCheckpoint also writes language_model/ (model.onnx + config, tokenizer, generation config): (c) loads that.
  await saveCheckpoint(storeCheckpointIO(store, PREFIX), { kind: 'policy', config: policy.config, weights: policy.weights, tokenizer: policy.tokenizerFiles });
  const service = await startService(store);
  closers.push(() => service.close());
  const ours = tally();
  const text = tally();
  const cached = tally();
  const nocache = tally();
  const tjsUseful = tally();
  const tjsAll = tally();
  let sameTokens = true;
  let rssService = 0;
  let engine: Awaited<ReturnType<typeof openEngine>> | undefined;
  let tjs: Awaited<ReturnType<typeof openTransformersJs>> | undefined;
  const groupSize = numberArg(values, 'group-prompts');
  for (const [g, group] of chunks(items, groupSize).entries()) {
    const offset = g * groupSize;
    ours.add(await service.group(group, offset));
    if (engine === undefined || tjs === undefined) {
      // Opened after the first service wave, so that this peak is the service's alone.
      rssService = peakRssMb();
      engine = await openEngine(policy);
      closers.push(engine.close);
      tjs = await openTransformersJs(join(root, ...PREFIX.split('/')), policy);
      closers.push(tjs.close);
    }
    text.add(await engine.text(group, offset));
    const t = await tjs.group(group);
    tjsUseful.add(t.useful);
    tjsAll.add(t.all);
    const pair = await engine.cachePair(group.slice(0, numberArg(values, 'nocache-prompts')), offset);
    cached.add(pair.cached);
    nocache.add(pair.nocache);
    sameTokens &&= pair.same;
    log({
      phase: 'group',
      done: offset + group.length,
      of: P,
      tps: { ours: ours.result().tps, oursText: text.result().tps, transformersjs: tjsUseful.result().tps, cached: cached.result().tps, nocache: nocache.result().tps },
      peakRssMb: peakRssMb(),
    });
  }
  const [a, b, c, t, cs] = [ours.result(), nocache.result(), tjsUseful.result(), text.result(), cached.result()];
  const peak = peakRssMb();
  console.log(
    JSON.stringify({
      ours_tps: a.tps,
      nocache_tps: b.tps,
      transformersjs_tps: c.tps,
      ratio_vs_transformersjs: +(a.tps / c.tps).toFixed(2),
      ratio_vs_nocache: +(a.tps / b.tps).toFixed(2),
      peak_rss_mb: peak,
      // The service's own peak (before the engine and transformers.js were loaded into this process).
      peak_rss_mb_service: rssService,
      // Like-for-like: our engine on the same text-only prompts and batches as transformers.js.
      ours_text_tps: t.tps,
      ratio_text_vs_transformersjs: +(t.tps / c.tps).toFixed(2),
      // transformers.js counting every token it sampled, also those after a row's first </s>.
      transformersjs_all_sampled_tps: tjsAll.result().tps,
      // Cached engine on exactly the no-cache batches (same seeds, same tokens).
      cached_same_batch_tps: cs.tps,
      ratio_vs_nocache_same_batch: +(cs.tps / b.tps).toFixed(2),
      nocache_same_tokens: sameTokens,
      goals: { ratio_vs_transformersjs_ge_3: a.tps / c.tps >= 3, ratio_vs_nocache_ge_5: a.tps / b.tps >= 5, peak_rss_lt_1500_mb: peak < 1500 },
      detail: { service: a, nocache: b, transformersjs: c, transformersjsAllSampled: tjsAll.result(), oursText: t, cachedSameBatch: cs, transformersjsExpandsNumReturnSequences: tjs?.expandsItself },
      settings: {
        policy: policy.source,
        prompts: P,
        k: K,
        temperature,
        topP: 1,
        maxNewTokens,
        seed,
        groupPrompts: groupSize,
        requestPrompts: numberArg(values, 'request-prompts'),
        waveRows: numberArg(values, 'wave-rows'),
        workers: numberArg(values, 'workers'),
        intraOpThreads,
        nocachePromptsPerGroup: numberArg(values, 'nocache-prompts'),
        enginePrompts: numberArg(values, 'engine-prompts'),
        tjsPrompts: numberArg(values, 'tjs-prompts'),
        loadAverage: loadavg().map((l) => +l.toFixed(2)),
      },
    }),
  );
} finally {
  for (const close of closers.reverse()) await close();
  await store.close();
  await rm(root, { recursive: true, force: true });
}
