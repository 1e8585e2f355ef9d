import { describe, expect, it } from 'vitest';
import { formatCot, splitSteps } from '@mstar/cot';
import { generateSplit } from '@mstar/world';
import type { Problem } from '@mstar/world';
import { prmQuality } from '../src/index.js';

const problems = generateSplit('validation', { seed: 2, size: 60 });
const countProblems = problems.filter((p) => p.family === 'count');
const [a, b] = countProblems as [Problem, Problem];

/** The gold chain with its count step claiming `n` (and the answer `answer`). */
function claim(p: Problem, n: number, answer: string): string {
  return formatCot([splitSteps(p.cot)[0]!.replace(/is \d+\.$/, `is ${n}.`)], answer);
}
const off = (p: Problem): number => (Number(p.answer) + 1) % 5;

describe('prmQuality', () => {
  it('measures step AUC against the checker and best-of-K by PRM, majority and random', () => {
    const wrong = (p: Problem) => claim(p, off(p), String(off(p)));
    // a: two identical wrong answers, the gold chain, a lucky guess (wrong step, right answer).
    // b: the same wrong answer twice, the gold chain, the right answer without steps.
    const result = prmQuality([
      { problem: a, responses: [wrong(a), a.cot, wrong(a), claim(a, off(a), a.answer)], stepScores: [[0.2], [0.9], [0.3], [0.4]] },
      { problem: b, responses: [wrong(b), b.cot, wrong(b), `# Answer\n\n${b.answer}`], stepScores: [[0.6], [0.5], [0.1], []] },
    ]);
    expect(result.prompts).toBe(2);
    expect(result.k).toBe(4);
    // 7 scored steps: correct ones 0.9 and 0.5; incorrect 0.2, 0.3, 0.4, 0.6, 0.1. 0.9 beats all 5, 0.5 beats 4.
    expect(result.steps.scored).toBe(7);
    expect(result.steps.correctShare).toBeCloseTo(2 / 7, 10);
    expect(result.steps.auc).toBeCloseTo(9 / 10, 10);
    expect(result.steps.prefixAuc).toBeCloseTo(9 / 10, 10);
    // PRM picks a's gold (right) and b's wrong 0.6 (wrong). Both votes tie 2 to 2 and the wrong
    // answer is seen first, so majority is wrong on both.
    expect(result.bestOfK).toEqual({ prm: 0.5, majority: 0, random: (2 / 4 + 2 / 4) / 2, oracle: 1 });
  });

  it('uses the aggregation it is given and rejects mismatched score lists', () => {
    // A wrong two-step response scored [0.9, 0.3] against the gold chain scored [0.5]: min and last
    // (0.3) prefer the gold chain, mean (0.6) the wrong one.
    const two = formatCot([...splitSteps(a.cot), '1 + 1 = 2.'], String(off(a)));
    const input = [{ problem: a, responses: [two, a.cot], stepScores: [[0.9, 0.3], [0.5]] }];
    expect(prmQuality(input, 'min').bestOfK.prm).toBe(1);
    expect(prmQuality(input, 'last').bestOfK.prm).toBe(1);
    expect(prmQuality(input, 'mean').bestOfK.prm).toBe(0);
    expect(() => prmQuality([{ problem: a, responses: [a.cot], stepScores: [[0.5, 0.5]] }])).toThrow(/2 step scores for 1 steps/);
    expect(() => prmQuality([])).toThrow(/at least one prompt/);
    expect(() => prmQuality([{ problem: a, responses: [], stepScores: [] }])).toThrow(/at least one response/);
    expect(() => prmQuality([input[0]!, { problem: b, responses: [b.cot], stepScores: [[0.5]] }])).toThrow(/1 responses and 1 score lists, expected 2/);
  });
});
