import { commonV1, policyV1 } from '@mstar/contracts';
import { deriveSeed } from '@mstar/metrics';
import { initWeights, saveCheckpoint, storeCheckpointIO, TINY_CONFIG } from '@mstar/models';
import { createPolicyClient, loadConfig as loadPolicyConfig, startPolicyInference, type PolicyClient, type RunningPolicyInference } from '@mstar/policy-inference';
import { decodePrmData, isCorrect, runItems } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import { buildWorldTokenizer } from '@mstar/world';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyApi } from '../src/index.js';
import { promptOf } from '../src/pool.js';
import { silentLogger, specOf, startHarness, temperatureSelected, tempArtifacts, warmupPublished, type Harness, type TempArtifacts } from './fixture.js';

const RUN = 'real-1';
const spec = specOf({ selection: { rule: 'ALL_CORRECT' } });
const pool = runItems(spec.world, 'pool');
const byId = new Map(pool.map((item) => [item.id, item]));

/**
 * A random TINY policy never writes a `# Answer`, so the fresh PRM samples are replaced by the
 * gold chain of thought of their prompt; the rollouts from its step prefixes go to the real
 * service untouched (response_prefix, token budgets and seeds as the service sees them).
 */
function goldSamples(client: PolicyClient): PolicyApi {
  return {
    getModelInfo: (options) => client.getModelInfo(options),
    async *generate(request, options) {
      const fresh = request.prompts?.every((p) => p.responsePrefix === '') === true && request.temperature === 1 && request.numSamples === spec.prm.samplesPerPrompt;
      for await (const completion of client.generate(request, options)) {
        yield fresh ? { ...completion, text: byId.get(completion.promptId)?.response ?? completion.text } : completion;
      }
    },
  };
}

describe('against a real policy-inference service (TINY checkpoint)', () => {
  let artifacts: TempArtifacts;
  let policy: RunningPolicyInference;
  let h: Harness;
  const clients: PolicyClient[] = [];
  beforeAll(async () => {
    artifacts = await tempArtifacts();
    const weights = initWeights(TINY_CONFIG, 'policy', 1);
    const prefix = runArtifacts(RUN).policyCheckpoint(0);
    await saveCheckpoint(storeCheckpointIO(artifacts.store, prefix), { kind: 'policy', config: TINY_CONFIG, weights, tokenizer: buildWorldTokenizer() }, { onnx: false });
    policy = await startPolicyInference({
      config: loadPolicyConfig({ GRPC_PORT: '0', RUN_ID: RUN, INITIAL_CHECKPOINT: prefix, WORKERS: '1', INTRA_OP_THREADS: '1', LOG_LEVEL: 'silent', SHUTDOWN_GRACE: '1s' }),
      artifacts: artifacts.store,
      logger: silentLogger,
    });
    await policy.ready;
    h = await startHarness({
      script: () => '',
      artifacts,
      policyApi: () => {
        const client = createPolicyClient(`127.0.0.1:${policy.port}`);
        clients.push(client);
        return goldSamples(client);
      },
    });
    await h.startRun(RUN, spec);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    clients.forEach((c) => c.close());
    await policy?.close();
  });

  it('labels the gold chain of thought with rollouts sampled by the service, deterministically', async () => {
    await h.publish(RUN, warmupPublished(RUN));
    const ready = await h.waitFor((e) => e.payload?.$case === 'prmDataReady', 'PrmDataReady');
    const keys = runArtifacts(RUN);
    const first = await h.artifacts.get(keys.prmData);
    const trajectories = decodePrmData(first);
    // 2 prompts x 3 identical gold samples; every step but the last labelled by 4 rollouts.
    expect(trajectories).toHaveLength(6);
    for (const t of trajectories) {
      const item = byId.get(t.promptId)!;
      expect(t.response).toBe(item.response);
      expect(t.correct).toBe(true);
      expect(t.stepLabels.at(-1)).toBe(1);
      expect(t.stepLabels.slice(0, -1).every((l) => [0, 0.25, 0.5, 0.75, 1].includes(l))).toBe(true);
    }
    const steps = trajectories.map((t) => t.stepLabels.length);
    expect(ready.payload?.value).toMatchObject({ prompts: 2, trajectories: 6, labelledSteps: steps.reduce((a, b) => a + b, 0) });
    // Identical samples share their prefixes: rollouts = distinct prefixes x 4.
    const prefixes = [pool[6]!, pool[7]!].reduce((n, item) => n + trajectories.find((t) => t.promptId === item.id)!.stepLabels.length - 1, 0);
    expect(ready.payload?.value).toMatchObject({ rollouts: prefixes * 4 });

    // The same stage redone from scratch samples the same rollouts from the service.
    await h.artifacts.delete(keys.complete(keys.prmData));
    await h.restart();
    await h.publish(RUN, warmupPublished(RUN));
    await h.waitFor((e) => e.payload?.$case === 'prmDataReady', 'PrmDataReady after redo');
    expect(Buffer.from(await h.artifacts.get(keys.prmData)).equals(Buffer.from(first))).toBe(true);
  }, 60_000);

  it('builds a dataset from the service samples and verifies them by exact match', async () => {
    await h.publish(RUN, temperatureSelected(RUN, 1, 1));
    const ready = await h.waitFor((e) => e.payload?.$case === 'datasetReady', 'DatasetReady');
    const stats = ready.payload?.$case === 'datasetReady' ? ready.payload.value.dataset : undefined;
    expect(stats).toMatchObject({ iteration: 1, promptsTried: 3, samplesGenerated: 12, poolStart: 0 });
    // Recount from the service itself: the same request gives the same texts.
    const client = createPolicyClient(`127.0.0.1:${policy.port}`);
    try {
      const texts: string[][] = [[], [], []];
      for await (const c of client.generate({
        prompts: [0, 1, 2].map((i) => promptOf(pool[i]!)),
        numSamples: 4,
        temperature: 1,
        topP: 1,
        maxNewTokens: 24,
        seed: deriveSeed(spec.seed, 'iteration', 1),
        policy: { runId: RUN, kind: commonV1.CheckpointKind.POLICY, version: 0 },
      })) {
        expect(c.finishReason).not.toBe(policyV1.FinishReason.UNSPECIFIED);
        texts[c.promptIndex]![c.sampleIndex] = c.text;
      }
      const correct = texts.flatMap((samples, p) => samples.filter((t) => isCorrect(pool[p]!, t)));
      expect(stats?.correctSamples).toBe(correct.length);
      expect(stats?.keptSamples).toBe(correct.length);
    } finally {
      client.close();
    }
  }, 60_000);
});
