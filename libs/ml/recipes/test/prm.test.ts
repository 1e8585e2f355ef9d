import { runV1 } from '@mstar/contracts';
import { describe, expect, it } from 'vitest';
import { formatCot, splitSteps } from '@mstar/cot';
import { prmWeightsFromPolicy, initWeights, stepBoundaries, TINY_CONFIG } from '@mstar/models';
import { createWorldTokenizer } from '@mstar/world';
import { prmExamples, prmLoss, prmResponseIds, runItems, trainPrm } from '../src/index.js';
import type { PrmTrajectory } from '../src/index.js';

const tokenizer = createWorldTokenizer();
const pool = runItems({ poolSize: 16, validationSize: 1, inDomainTestSize: 0, outOfDomainTestSize: 0, worldSeed: 4, chainStyle: runV1.ChainStyle.PLAIN, answerStyle: runV1.AnswerStyle.SHORT }, 'pool');
const byId = new Map(pool.map((item) => [item.id, item]));

/** Per item: its gold CoT (all steps 1) and the chain ending in the next item's last step (that step 0). */
function labelled(): PrmTrajectory[] {
  return pool.flatMap((item, i) => {
    const steps = splitSteps(item.response!);
    const wrong = [...steps.slice(0, -1), splitSteps(pool[(i + 1) % pool.length]!.response!).at(-1)!];
    return [
      { promptId: item.id, response: item.response!, stepLabels: steps.map(() => 1), correct: true },
      { promptId: item.id, response: formatCot(wrong, '0'), stepLabels: [...steps.slice(0, -1).map(() => 1), 0], correct: false },
    ];
  });
}

describe('PRM recipe', () => {
  it('reads one boundary per step and leaves the answer block out', () => {
    const response = formatCot(['the red digits are 2 and 1.', '2 + 1 = 3.'], '3');
    const ids = prmResponseIds(tokenizer, response);
    expect(tokenizer.decode(ids)).toBe('the red digits are 2 and 1.\n\n2 + 1 = 3.');
    expect(stepBoundaries(ids, tokenizer.stepSeparatorId)).toHaveLength(2);
    expect(prmResponseIds(tokenizer, '# Answer\n\n3')).toEqual([]);
  });

  it('names the trajectory for unknown prompts, stepless responses and label counts that do not fit', () => {
    const item = pool[0]!;
    const steps = splitSteps(item.response!).length;
    expect(() => prmExamples([{ promptId: 'nope', response: item.response!, stepLabels: [1], correct: true }], byId, tokenizer, TINY_CONFIG)).toThrow(
      'trajectory 1: prompt_id "nope" is not in the run\'s pool',
    );
    expect(() => prmExamples([{ promptId: item.id, response: '# Answer\n\n3', stepLabels: [1], correct: true }], byId, tokenizer, TINY_CONFIG)).toThrow('has no steps to label');
    expect(() => prmExamples([{ promptId: item.id, response: item.response!, stepLabels: [1], correct: true }], byId, tokenizer, TINY_CONFIG)).toThrow(
      `1 step labels for a response with ${steps} steps`,
    );
  });

  it('training lowers the BCE at the step boundaries below what the mean label can reach', async () => {
    const data = labelled();
    const examples = prmExamples(data, byId, tokenizer, TINY_CONFIG);
    const initial = prmWeightsFromPolicy(TINY_CONFIG, initWeights(TINY_CONFIG, 'policy', 1), 2);
    const train = (epochs: number, batchSize: number) =>
      trainPrm({
        config: TINY_CONFIG,
        examples,
        separatorId: tokenizer.stepSeparatorId,
        epochs,
        batchSize,
        optimizer: { schedule: { kind: 'constant', lr: 3e-3 } },
        seed: 5,
        initialWeights: initial,
        runtime: { kind: 'session', intraOpThreads: 1 },
      });
    const trained = await train(8, 8);
    expect(trained.steps).toBe(32);
    const labels = data.flatMap((t) => t.stepLabels);
    const mean = labels.reduce((a, b) => a + b, 0) / labels.length;
    const entropy = -(mean * Math.log(mean) + (1 - mean) * Math.log(1 - mean));
    const before = await prmLoss({ config: TINY_CONFIG, weights: initial, examples, separatorId: tokenizer.stepSeparatorId });
    const after = await prmLoss({ config: TINY_CONFIG, weights: trained.weights, examples, separatorId: tokenizer.stepSeparatorId });
    // The training graph's loss over the whole data in one batch is the same mean BCE per labelled step.
    expect((await train(1, examples.length)).firstLoss).toBeCloseTo(before, 4);
    expect(before).toBeGreaterThan(0.6);
    expect(after).toBeLessThan(entropy);
    expect(trained.lastEpochLoss).toBeLessThan(entropy);
  }, 60_000);
});
