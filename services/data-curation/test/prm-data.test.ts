import { commonV1, type eventsV1 } from '@mstar/contracts';
import { deriveSeed } from '@mstar/metrics';
import { decodePrmData, runItems } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import { createWorldTokenizer } from '@mstar/world';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutBudget } from '../src/index.js';
import { specOf, startHarness, warmupPublished, WRONG, type Harness, type PolicyScript } from './fixture.js';

const spec = specOf();
const pool = runItems(spec.world, 'pool');
const gold = new Map(pool.map((item) => [item.id, item.answer]));
const PREFIX_A = 'step A\n\n';
const PREFIX_AB = 'step A\n\nstep B\n\n';

/**
 * Per PRM prompt: sample 0 = 3 steps, correct; sample 1 = 2 steps sharing step A, wrong; sample 2
 * = no answer (dropped). Rollouts from "step A" reach the answer for rollout indices 0-2 (3/4),
 * from "step A, step B" for index 0 only (1/4), from anything else never.
 */
const script: PolicyScript = (prompt, s) => {
  const answer = gold.get(prompt.promptId) as string;
  if (prompt.responsePrefix === '') {
    if (s === 0) return `step A\n\nstep B\n\nstep C\n\n# Answer\n\n${answer}`;
    if (s === 1) return `step A\n\nstep X\n\n# Answer\n\n${WRONG}`;
    return 'a response that never answers';
  }
  const reaches = prompt.responsePrefix === PREFIX_A ? s < 3 : prompt.responsePrefix === PREFIX_AB ? s < 1 : false;
  return `more\n\n# Answer\n\n${reaches ? answer : WRONG}`;
};

const isPrmReady = (runId: string) => (e: eventsV1.Event): boolean => e.runId === runId && e.payload?.$case === 'prmDataReady';

describe('PRM data (Monte-Carlo step labels)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script });
  });
  afterAll(async () => {
    await h.close();
  });

  it('labels every step by the share of rollouts that reach the gold answer', async () => {
    await h.startRun('prm-1', spec);
    await h.publish('prm-1', warmupPublished('prm-1'));
    const ready = await h.waitFor(isPrmReady('prm-1'), 'PrmDataReady');
    const keys = runArtifacts('prm-1');
    // Two PRM prompts from the end of the pool, in pool order; 3 + 2 labels per prompt.
    const [p6, p7] = [pool[6]!, pool[7]!];
    const expected = [p6, p7].flatMap((item) => [
      { promptId: item.id, response: `step A\n\nstep B\n\nstep C\n\n# Answer\n\n${item.answer}`, stepLabels: [0.75, 0.25, 1], correct: true },
      { promptId: item.id, response: `step A\n\nstep X\n\n# Answer\n\n${WRONG}`, stepLabels: [0.75, 0], correct: false },
    ]);
    expect(decodePrmData(await h.artifacts.get(keys.prmData))).toEqual(expected);
    expect(await h.artifacts.exists(keys.complete(keys.prmData))).toBe(true);
    expect(ready.source).toBe('data-curation');
    expect(ready.payload?.value).toEqual({
      artifactKey: keys.prmData,
      sourcePolicy: { runId: 'prm-1', kind: commonV1.CheckpointKind.POLICY, version: 0 },
      prompts: 2,
      trajectories: 4,
      labelledSteps: 10,
      // Two distinct prefixes per prompt (sample 1 shares "step A" with sample 0), 4 rollouts each.
      rollouts: 16,
      meanStepLabel: 0.55,
    });
    expect(await h.metricValue('mstar_curation_prm_samples_dropped_total')).toBe(2);
    expect(await h.metricValue('mstar_curation_rollouts_total')).toBe(16);
    expect(await h.metricValue('mstar_curation_samples_generated_total', { stage: 'prm-data' })).toBe(6);
    expect(h.progress.filter((p) => p.runId === 'prm-1').at(-1)).toEqual({ runId: 'prm-1', stage: 'prm-data', iteration: 0, done: 2, total: 2, etaMs: 0 });
  });

  it('samples at T = 1 pinned to policy v0 with the prm-data seed, and rolls each distinct prefix out once within its token budget', () => {
    const calls = h.policy.requests;
    const samples = calls.filter((r) => r.prompts.every((p) => p.responsePrefix === ''));
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({ numSamples: 3, temperature: 1, topP: 1, maxNewTokens: 24, seed: deriveSeed(7, 'prm-data'), policy: { runId: 'prm-1', version: 0 } });
    expect(samples[0]?.prompts.map((p) => p.promptId)).toEqual([pool[6]!.id, pool[7]!.id]);
    const rollouts = calls.filter((r) => r !== samples[0]);
    const tokenizer = createWorldTokenizer();
    const seen = rollouts.flatMap((r) => {
      expect(r).toMatchObject({ numSamples: 4, temperature: 1, seed: deriveSeed(7, 'prm-data'), policy: { version: 0 } });
      return r.prompts.map((p) => {
        expect(r.maxNewTokens).toBe(rolloutBudget(24, tokenizer.encode(p.responsePrefix).length));
        return `${p.promptId}|${p.responsePrefix}`;
      });
    });
    expect(seen.sort()).toEqual([pool[6]!.id, pool[7]!.id].flatMap((id) => [`${id}|${PREFIX_A}`, `${id}|${PREFIX_AB}`]).sort());
  });

  it('ignores policy checkpoints other than v0', async () => {
    const before = h.policy.requests.length;
    await h.publish('prm-1', warmupPublished('prm-1', 1));
    await expect.poll(() => h.metricValue('mstar_curation_events_ignored_total', { reason: 'not-warmup-policy' })).toBe(1);
    expect(h.policy.requests.length).toBe(before);
  });

  it('re-publishes PrmDataReady without sampling when the output is complete', async () => {
    const before = h.policy.requests.length;
    const first = await h.waitFor(isPrmReady('prm-1'), 'PrmDataReady');
    await h.restart();
    await h.publish('prm-1', warmupPublished('prm-1'));
    const again = await h.waitFor(isPrmReady('prm-1'), 'PrmDataReady again');
    expect(again.payload).toEqual(first.payload);
    expect(again.eventId).toBe(first.eventId);
    expect(h.policy.requests.length).toBe(before);
    expect(await h.metricValue('mstar_curation_outputs_republished_total', { stage: 'prm-data' })).toBe(1);
  });

  it('redoes a partial output byte for byte', async () => {
    const keys = runArtifacts('prm-1');
    const original = await h.artifacts.get(keys.prmData);
    // A crash after a partial write and before the marker.
    await h.artifacts.delete(keys.complete(keys.prmData));
    await h.artifacts.put(keys.prmData, original.slice(0, 40));
    await h.restart();
    const before = h.policy.requests.length;
    await h.publish('prm-1', warmupPublished('prm-1'));
    await h.waitFor(isPrmReady('prm-1'), 'PrmDataReady after redo');
    expect(h.policy.requests.length).toBeGreaterThan(before);
    expect(Buffer.from(await h.artifacts.get(keys.prmData)).equals(Buffer.from(original))).toBe(true);
  });
});
