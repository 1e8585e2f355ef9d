import { formatCot, splitSteps } from '@mstar/cot';
import { InvalidArgumentError } from '@mstar/errors';
import { curationV1 } from '@mstar/contracts';
import { generateSplit, goldCot, type Problem } from '@mstar/world';
import { describe, expect, it } from 'vitest';
import { keptQuality } from '../src/index.js';

const problems = generateSplit('train', { seed: 2, size: 80 });
const byId = new Map(problems.map((p) => [p.id, p]));
const [a, b] = problems.filter((p) => p.family === 'count') as [Problem, Problem];
const digitSum = problems.find((p) => p.family === 'digit-sum')!;

const record = (p: Problem, response: string, prmScore: number, hinted = false) =>
  curationV1.DatasetRecord.fromPartial({ promptId: p.id, response, prmScore, hinted });
/** The gold answer reached through a wrong count step (a lucky sample the exact match keeps). */
const lucky = (p: Problem) => formatCot([splitSteps(p.cot)[0]!.replace(/is \d+\.$/, `is ${(Number(p.answer) + 1) % 5}.`)], p.answer);
/** The right count after a wrong tally (every count scene has objects; this one tallies none). */
const misTallied = (p: Problem) => goldCot(p, 'tally').replace(/^.*, so /, 'nothing, so ');

describe('keptQuality', () => {
  it('counts the kept samples whose every step is right, by family, and the PRM AUC between the kinds', () => {
    const quality = keptQuality(
      [record(a, a.cot, 0.9), record(a, lucky(a), 0.4), record(b, lucky(b), 0.7, true), record(digitSum, digitSum.cot, 0.5, true), record(b, misTallied(b), 0.2)],
      byId,
    );
    expect(quality.kept).toBe(5);
    expect([quality.prompts, quality.distinct]).toEqual([3, 5]);
    expect(quality.allStepsRight).toBe(2);
    expect(quality.valuesRight).toBe(3);
    expect(quality.byFamily).toEqual({ count: { kept: 4, allStepsRight: 1, valuesRight: 2 }, 'digit-sum': { kept: 1, allStepsRight: 1, valuesRight: 1 } });
    // The two drawn with a hint: b's lucky sample and the digit sum's right one.
    expect(quality.hinted).toEqual({ kept: 2, allStepsRight: 1, valuesRight: 1 });
    // right 0.9 and 0.5 against lucky 0.4, 0.7 and 0.2: 0.9 beats all three, 0.5 beats 0.4 and 0.2.
    expect(quality.prmAuc).toBeCloseTo(5 / 6, 10);
  });

  it('counts a response kept twice for one prompt once among the distinct', () => {
    const twice = keptQuality([record(a, a.cot, 0.9), record(a, a.cot, 0.9), record(b, b.cot, 0.8), record(b, lucky(b), 0.3)], byId);
    expect(twice).toMatchObject({ kept: 4, prompts: 2, distinct: 3, allStepsRight: 3 });
  });

  it('judges a worked-answer world\'s samples against its worked answers', () => {
    const worked = new Map(generateSplit('train', { seed: 2, size: 80, answers: 'worked' }).map((p) => [p.id, p]));
    const compare = [...worked.values()].find((p) => p.family === 'compare')!;
    expect(keptQuality([record(compare, goldCot(compare, 'tally'), 0.5)], worked)).toMatchObject({ kept: 1, allStepsRight: 1, valuesRight: 1 });
    // A short answer is not a worked world's gold answer: the samples are another world's.
    expect(() => keptQuality([record(byId.get(compare.id)!, byId.get(compare.id)!.cot, 0.5)], worked)).toThrow(/is this the run's world/);
  });

  it('has no PRM AUC when every kept sample is of one kind or every score is one value, and rejects prompts outside the pool or of another world', () => {
    expect(keptQuality([record(a, lucky(a), 0.1)], byId)).toMatchObject({ kept: 1, allStepsRight: 0, prmAuc: null });
    // Both kinds, but kept by a rule that does not score: every record carries 0, which ranks nothing.
    expect(keptQuality([record(a, a.cot, 0), record(a, lucky(a), 0)], byId)).toMatchObject({ kept: 2, allStepsRight: 1, prmAuc: null });
    const stranger = curationV1.DatasetRecord.fromPartial({ promptId: 'train-99999', response: a.cot });
    expect(() => keptQuality([stranger], byId)).toThrow(InvalidArgumentError);
    // The same ids in another world: the kept answers are not its gold answers.
    const otherWorld = new Map(generateSplit('train', { seed: 3, size: 80 }).map((p) => [p.id, p]));
    const wrongAnswers = problems.filter((p) => otherWorld.get(p.id)!.answer !== p.answer).map((p) => record(p, p.cot, 0.5));
    expect(wrongAnswers.length).toBeGreaterThan(0);
    expect(() => keptQuality(wrongAnswers, otherWorld)).toThrow(/is this the run's world/);
  });
});
