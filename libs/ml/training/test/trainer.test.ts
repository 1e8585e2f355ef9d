import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder, buildTrainingGraph, decoderLogits, toModel } from '@mstar/graph';
import { NonFiniteGradientError, ParamLayout, ParamStore } from '@mstar/optim';
import type { AdamWOptions } from '@mstar/optim';
import { createSession, createSessionPool } from '@mstar/runtime';
import type { Feeds, SessionPool } from '@mstar/runtime';
import { TrainerConfigError, TrainerStateError, TrainingBatchError, createTrainer } from '@mstar/training';
import type { Trainer, TrainerEvent, TrainerOptions } from '@mstar/training';
import { decoderBatch, relativeMaxError, sameBits, sliceRows, tinyConfig, tinyDecoder } from './helpers.js';

const adamw: AdamWOptions = {
  schedule: { kind: 'warmup-cosine', lr: 1e-2, warmupSteps: 2, totalSteps: 20, minLr: 1e-3 },
  weightDecay: 0.1,
  noDecay: (name) => name.endsWith('norm'),
};

function trainerOptions(decoder: ReturnType<typeof tinyDecoder>, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    model: decoder.model,
    training: decoder.training,
    params: decoder.params,
    optimizer: adamw,
    clipNorm: 1,
    runtime: { kind: 'session', intraOpThreads: 2 },
    ...extra,
  };
}

const trainers: Trainer[] = [];
async function open(options: TrainerOptions): Promise<Trainer> {
  const trainer = await createTrainer(options);
  trainers.push(trainer);
  return trainer;
}
afterAll(async () => {
  for (const t of trainers) await t.close();
});

describe('training graph', () => {
  it('computes the same logits and loss as the inference graph for the same weights', async () => {
    const config = { ...tinyConfig, layers: 2 };
    const batch = decoderBatch(config, 3, 11);
    // Training graph that also outputs its logits.
    const train = new GraphBuilder('train');
    const shape = ['batch', config.seq];
    const ids = train.input('input_ids', 'int64', shape);
    const mask = train.input('attention_mask', 'float32', shape);
    const targets = train.input('targets', 'int64', shape);
    const logits = decoderLogits(train, config, { inputIds: ids, attentionMask: mask }, { training: true });
    const loss = train.tokenCrossEntropy(logits, targets, { reduction: 'mean' });
    train.output(logits, 'logits');
    buildTrainingGraph(train, { loss });
    const weights = tinyDecoder(config, 3).params;

    const infer = new GraphBuilder('infer');
    const inferLogits = decoderLogits(infer, config, {
      inputIds: infer.input('input_ids', 'int64', shape),
      attentionMask: infer.input('attention_mask', 'float32', shape),
    });
    infer.output(inferLogits, 'logits');
    const weightMap = Object.fromEntries(weights.layout.entries.map((e) => [e.name, weights.view(e.name)]));

    const trainSession = await createSession(toModel(train, { params: 'inputs' }), { device: 'cpu', intraOpThreads: 1 });
    const inferSession = await createSession(toModel(infer, { weights: weightMap }), { device: 'cpu', intraOpThreads: 1 });
    const paramFeeds = Object.fromEntries(weights.layout.entries.map((e) => [e.name, { type: 'float32' as const, dims: e.shape, data: weights.view(e.name) }]));
    const { input_ids, attention_mask } = batch as Required<Feeds>;
    const trained = await trainSession.run({ input_ids: input_ids!, attention_mask: attention_mask!, targets: batch['targets']!, ...paramFeeds }, ['logits', 'loss']);
    const inferred = await inferSession.run({ input_ids: input_ids!, attention_mask: attention_mask! });
    await trainSession.release();
    await inferSession.release();

    const a = trained['logits']!.data as Float32Array;
    const b = inferred['logits']!.data as Float32Array;
    expect(trained['logits']!.dims).toEqual([3, config.seq, config.vocab]);
    expect(a.length).toBe(b.length);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    expect(maxDiff).toBeLessThan(1e-4);
    // The training loss is the mean token cross-entropy of those logits.
    const t = batch['targets']!.data as BigInt64Array;
    let ce = 0;
    for (let r = 0; r < t.length; r++) {
      const row = b.subarray(r * config.vocab, (r + 1) * config.vocab);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      ce += lse - row[Number(t[r])]!;
    }
    expect(Number(trained['loss']!.data[0])).toBeCloseTo(ce / t.length, 5);
  });
});

describe('createTrainer', () => {
  it('overfits a small batch: loss drops below 1% of its start', async () => {
    const decoder = tinyDecoder();
    const trainer = await open(trainerOptions(decoder, { optimizer: { schedule: { kind: 'constant', lr: 2e-2 }, weightDecay: 0 }, clipNorm: undefined }));
    const batch = decoderBatch(tinyConfig, 4, 5);
    const losses: number[] = [];
    for (let s = 0; s < 150; s++) {
      const { loss } = await trainer.step([batch]);
      losses.push(loss);
      if (loss < losses[0]! / 100) break;
    }
    console.log(`overfit: loss ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(4)} in ${losses.length} steps`);
    expect(losses[0]).toBeGreaterThan(2); // about ln(16) at initialization
    expect(losses.at(-1)!).toBeLessThan(losses[0]! / 100);
    expect(trainer.steps).toBe(losses.length);
    // The caller's store is the initial copy; the trainer trains its own.
    expect(sameBits(decoder.params.data, trainer.params.data)).toBe(false);
    expect(sameBits(decoder.params.data, tinyDecoder().params.data)).toBe(true);
  });

  it('resumes from a checkpoint bit for bit with real gradients: N straight = N/2 + save + load into a fresh trainer + N/2', async () => {
    const decoder = tinyDecoder();
    const batches = Array.from({ length: 6 }, (_, s) => [decoderBatch(tinyConfig, 2, 100 + 2 * s), decoderBatch(tinyConfig, 2, 101 + 2 * s)]);
    const opts = trainerOptions(decoder, { microBatchesPerStep: 2 });

    const straight = await open(opts);
    for (const b of batches) await straight.step(b);

    const first = await open(opts);
    for (const b of batches.slice(0, 3)) await first.step(b);
    const checkpoint = first.save();
    const resumed = await open(opts);
    resumed.load(checkpoint);
    expect(resumed.steps).toBe(3);
    for (const b of batches.slice(3)) await resumed.step(b);

    expect(sameBits(resumed.params.data, straight.params.data)).toBe(true);
    expect(sameBits(resumed.optimizer.m, straight.optimizer.m)).toBe(true);
    expect(sameBits(resumed.optimizer.v, straight.optimizer.v)).toBe(true);
    expect(Buffer.from(resumed.save()).equals(Buffer.from(straight.save()))).toBe(true);

    // The control: the params alone (fresh moments, step count 0) do not continue the same way.
    const naive = await open({ ...opts, params: ParamStore.fromTensors(first.params.toTensors()) });
    for (const b of batches.slice(3)) await naive.step(b);
    expect(sameBits(naive.params.data, straight.params.data)).toBe(false);
  });

  it('accumulates two half micro-batches into the same update as one full batch', async () => {
    const decoder = tinyDecoder();
    const full = decoderBatch(tinyConfig, 4, 42);
    const whole = await open(trainerOptions(decoder, { clipNorm: undefined }));
    const halves = await open(trainerOptions(decoder, { clipNorm: undefined, microBatchesPerStep: 2 }));
    const a = await whole.step([full]);
    const b = await halves.step([sliceRows(full, 0, 2), sliceRows(full, 2, 4)]);
    expect(b.tokens).toBe(a.tokens);
    expect(b.tokens).toBe(32);
    expect(Math.abs(b.loss - a.loss)).toBeLessThan(1e-5);
    expect(Math.abs(b.gradNorm - a.gradNorm) / a.gradNorm).toBeLessThan(1e-5);
    // After one AdamW step m = (1 - beta1) * gradient: the accumulated gradients agree.
    expect(relativeMaxError(halves.optimizer.m, whole.optimizer.m)).toBeLessThan(1e-5);
    expect(relativeMaxError(halves.params.data, whole.params.data)).toBeLessThan(1e-5);
  });

  it('gives the same result through the worker pool as in this thread', async () => {
    const decoder = tinyDecoder();
    const pool: SessionPool = createSessionPool({ workers: 1, device: 'cpu', intraOpThreads: 2 });
    try {
      const events: TrainerEvent[] = [];
      const inPool = await createTrainer(trainerOptions(decoder, { runtime: { kind: 'pool', pool }, microBatchesPerStep: 2, onProgress: (e) => events.push(e) }));
      const inThread = await open(trainerOptions(decoder, { microBatchesPerStep: 2 }));
      for (let s = 0; s < 3; s++) {
        const batches = [decoderBatch(tinyConfig, 2, 7 * s), decoderBatch(tinyConfig, 3, 7 * s + 1)];
        const r1 = await inPool.step(batches);
        const r2 = await inThread.step(batches);
        expect(r1.loss).toBe(r2.loss);
        expect(r1.tokens).toBe(40);
        // The batch arrays are cloned, not transferred: the caller can still read them.
        expect(batches[0]!['input_ids']!.data.length).toBe(16);
      }
      expect(Buffer.from(inPool.save()).equals(Buffer.from(inThread.save()))).toBe(true);
      expect(events.map((e) => e.kind)).toEqual(['micro-batch', 'micro-batch', 'step', 'micro-batch', 'micro-batch', 'step', 'micro-batch', 'micro-batch', 'step']);
      expect(events[2]).toMatchObject({ kind: 'step', step: 1, tokens: 40 });
      await inPool.close();
      await expect(inPool.step([])).rejects.toThrow(/trainer is closed/);
    } finally {
      await pool.close();
    }
  });

  it('skips a step whose gradient is not finite, leaving params and optimizer untouched', async () => {
    const decoder = tinyDecoder();
    const trainer = await open(trainerOptions(decoder));
    const good = decoderBatch(tinyConfig, 2, 1);
    await trainer.step([good]);
    const before = trainer.save();
    const bad = { ...good, loss_weights: { type: 'float32' as const, dims: [2, tinyConfig.seq], data: new Float32Array(2 * tinyConfig.seq).fill(Number.NaN) } };
    await expect(trainer.step([bad])).rejects.toThrow(NonFiniteGradientError);
    expect(Buffer.from(trainer.save()).equals(Buffer.from(before))).toBe(true);
    await trainer.step([good]);
    expect(trainer.steps).toBe(2);
  });

  it('refuses parameters that do not match the graph, wrong micro-batch counts and foreign checkpoints', async () => {
    const decoder = tinyDecoder();
    const renamed = new ParamStore(new ParamLayout(decoder.params.layout.entries.map((e) => [e.name === 'embed' ? 'embedding' : e.name, e.shape] as const)));
    await expect(createTrainer(trainerOptions(decoder, { params: renamed }))).rejects.toThrow(/no gradient output for embedding; not in the layout: embed/);
    const reshaped = new ParamStore(new ParamLayout(decoder.params.layout.entries.map((e) => [e.name, e.name === 'final_norm' ? [8, 2] : e.shape] as const)));
    await expect(createTrainer(trainerOptions(decoder, { params: reshaped }))).rejects.toThrow(/graph input "final_norm" is float32 \[16\] but the layout has float32 \[8, 2\]/);
    await expect(createTrainer(trainerOptions(decoder, { microBatchesPerStep: 0 }))).rejects.toThrow(TrainerConfigError);

    const trainer = await open(trainerOptions(decoder, { microBatchesPerStep: 2 }));
    const batch = decoderBatch(tinyConfig, 1, 3);
    await expect(trainer.step([batch])).rejects.toThrow(/step got 1 micro-batches, the trainer is configured for 2/);
    await expect(trainer.step([batch, { ...batch, embed: { type: 'float32', dims: [1], data: new Float32Array(1) } }])).rejects.toThrow(TrainingBatchError);

    const other = tinyDecoder({ ...tinyConfig, ffn: 24 });
    const otherTrainer = await open(trainerOptions(other));
    expect(() => trainer.load(otherTrainer.save())).toThrow(TrainerStateError);
    expect(() => trainer.load(otherTrainer.save())).toThrow(/does not fit this model's parameters: .*w_gate_up/);
    expect(() => trainer.load(new Uint8Array(16))).toThrow(/not a valid safetensors file/);
  });
});
