import { describe, expect, it } from 'vitest';
import { RecipeConfigError, blankImage, evaluate, isCorrect } from '../src/index.js';
import type { EvalItem, ResponseSampler, SampleRequest } from '../src/index.js';

const answer = (a: string): string => `the number of red shapes is ${a}.\n\n# Answer\n\n${a}`;
const item = (id: string, family: string, gold: string, choices?: string[]): EvalItem => ({
  id,
  family,
  question: `question ${id}`,
  image: blankImage(32),
  answer: gold,
  ...(choices !== undefined ? { choices } : {}),
});

const items = [
  item('a', 'count', '3'),
  item('b', 'count', '5'),
  item('c', 'compare', 'red shapes', ['red shapes', 'blue shapes', 'equal']),
  item('d', 'digit-sum', '12'),
];

// Responses by item id: greedy, then K = 4 samples per temperature.
const GREEDY: Record<string, string> = { a: answer('3'), b: answer('4'), c: 'red shapes are more.\n\n# Answer\n\nA', d: 'no answer here' };
const SAMPLED: Record<number, Record<string, string[]>> = {
  1: {
    a: [answer('2'), answer('4'), answer('3'), answer('1')],
    b: [answer('4'), answer('4'), answer('6'), '# Answer\n\n'],
    c: [answer('equal'), answer('(B)'), answer('blue shapes'), answer('equal')],
    d: [answer('11'), answer('12.0'), answer('13'), answer('12')],
  },
  0.5: {
    a: [answer('3'), answer('3'), answer('3'), answer('3')],
    b: [answer('4'), answer('4'), answer('4'), answer('4')],
    c: [answer('RED SHAPES'), answer('equal'), answer('equal'), answer('equal')],
    d: [answer('11'), answer('11'), answer('11'), answer('11')],
  },
};

function fakeSampler(requests: SampleRequest[]): ResponseSampler {
  return (request) => {
    requests.push(request);
    return Promise.resolve(
      request.items.map((it) => {
        const texts = request.temperature === 0 ? [GREEDY[it.id]!] : SAMPLED[request.temperature]![it.id]!;
        expect(texts).toHaveLength(request.numSamples);
        return texts.map((text) => ({ text, tokens: text.length, truncated: false }));
      }),
    );
  };
}

// Higher score = better. a: the only correct sample (index 2) is ranked last -> top-2 misses it.
// b: nothing correct. c: nothing correct at T=1. d: correct samples 1 and 3 tie with sample 0
// at 0.9; ties go to the earlier sample, so top-2 = samples 0 and 1 -> hit.
const SCORES: Record<string, number[]> = { a: [0.9, 0.8, 0.1, 0.5], b: [1, 1, 1, 1], c: [0.3, 0.2, 0.1, 0.4], d: [0.9, 0.9, 0.2, 0.9] };

describe('evaluate', () => {
  it('gives exact greedy accuracy, Pass@K and Reward-Pass@2 per temperature and family', async () => {
    const requests: SampleRequest[] = [];
    const progress: string[] = [];
    const result = await evaluate({
      policy: { sampler: fakeSampler(requests) },
      items,
      k: 4,
      temperature: [1, 0.5],
      seed: 9,
      scorer: (it, responses) => {
        expect(responses).toHaveLength(4);
        return Promise.resolve(SCORES[it.id]!);
      },
      promptsPerBatch: 3,
      greedyPromptsPerBatch: 64,
      keepSamples: true,
      onProgress: (e) => progress.push(`${e.phase}@${e.temperature}:${e.done}/${e.total}`),
    });
    // Greedy: a right, b wrong, c right (letter A maps to its option), d has no answer.
    expect(result.greedyAccuracy).toBe(0.5);
    // T=1: a (sample 2), d (12.0 == 12) pass; b and c do not ((B) is "blue shapes", wrong).
    expect(result.temperatures.map((t) => t.temperature)).toEqual([1, 0.5]);
    expect(result.temperatures[0]!.passAtK).toBe(0.5);
    expect(result.temperatures[0]!.rewardPassAtK).toBe(0.25);
    expect(result.temperatures[0]!.sampleAccuracy).toBeCloseTo((1 / 4 + 0 + 0 + 2 / 4) / 4, 12);
    // T=0.5: a and c (case-folded) pass; top-2 of c by score is samples 0 and 1: sample 0 is correct.
    expect(result.temperatures[1]!.passAtK).toBe(0.5);
    expect(result.temperatures[1]!.rewardPassAtK).toBe(0.5);
    expect(result).toMatchObject({ n: 4, k: 4, seed: 9, temperature: 1, passAtK: 0.5, rewardK: 2, rewardPassAtK: 0.25 });
    expect(result.perFamily).toEqual({
      count: { n: 2, greedyAccuracy: 0.5, passAtK: 0.5, rewardPassAtK: 0 },
      compare: { n: 1, greedyAccuracy: 1, passAtK: 0, rewardPassAtK: 0 },
      'digit-sum': { n: 1, greedyAccuracy: 0, passAtK: 1, rewardPassAtK: 1 },
    });
    // One greedy call (64 per batch), then 2 + 2 sampling calls of at most 3 prompts.
    expect(requests.map((r) => [r.temperature, r.numSamples, r.items.length, r.seed])).toEqual([
      [0, 1, 4, 9],
      [1, 4, 3, 9],
      [1, 4, 1, 9],
      [0.5, 4, 3, 9],
      [0.5, 4, 1, 9],
    ]);
    expect(progress).toEqual(['greedy@0:4/4', 'sample@1:3/4', 'sample@1:4/4', 'sample@0.5:3/4', 'sample@0.5:4/4']);
    expect(result.samples![0]!.greedy).toEqual({ text: GREEDY.a, correct: true });
    expect(result.samples![0]!.sampled[0]!.responses.map((r) => [r.correct, r.score])).toEqual([
      [false, 0.9],
      [false, 0.8],
      [true, 0.1],
      [false, 0.5],
    ]);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it('skips the greedy pass and reward metrics when asked', async () => {
    const requests: SampleRequest[] = [];
    const result = await evaluate({ policy: { sampler: fakeSampler(requests) }, items, k: 4, temperature: 0.5, greedy: false });
    expect(requests.every((r) => r.temperature === 0.5)).toBe(true);
    expect(result.greedyAccuracy).toBeUndefined();
    expect(result.rewardPassAtK).toBeUndefined();
    expect(result.passAtK).toBe(0.5);
  });

  it('refuses bad settings and a scorer that returns the wrong number of scores', async () => {
    const policy = { sampler: fakeSampler([]) };
    await expect(evaluate({ policy, items: [], k: 4 })).rejects.toThrow(/no items/);
    await expect(evaluate({ policy, items, k: 0 })).rejects.toThrow(/k must be an integer >= 1, got 0/);
    await expect(evaluate({ policy, items, k: 4, temperature: 0 })).rejects.toThrow(RecipeConfigError);
    await expect(evaluate({ policy, items, k: 4, temperature: 1, scorer: () => Promise.resolve([1, 2]) })).rejects.toThrow(/scorer returned 2 scores .* for 4 responses of item a/);
    await expect(evaluate({ policy, items, k: 4, temperature: 1, scorer: () => Promise.resolve([1, Number.NaN, 0, 0]) })).rejects.toThrow(/1 NaN or \+Infinity/);
  });

  it('matches answers as the method does', () => {
    expect(isCorrect(items[0]!, '# Answer\n\n3.0')).toBe(true);
    expect(isCorrect(items[0]!, '3')).toBe(false);
    expect(isCorrect(items[2]!, '# Answer\n\n(A)')).toBe(true);
  });
});
