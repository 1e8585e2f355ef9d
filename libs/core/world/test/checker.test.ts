import { describe, expect, it } from 'vitest';
import { checkResponse, checkStep, generateProblem, generateSplit, goldCot, isAnswerStyle, isCotStyle, parseStep, withAnswerStyle } from '../src/index.js';
import type { CheckableProblem, Scene } from '../src/index.js';

// Red: 2 circles + 1 square; blue: 1 circle + 1 triangle; green: 1 cross; digits: red 3, red 5, blue 4.
const scene: Scene = {
  objects: [
    { kind: 'shape', row: 0, col: 0, colour: 'red', shape: 'circle' },
    { kind: 'shape', row: 0, col: 1, colour: 'red', shape: 'circle' },
    { kind: 'shape', row: 0, col: 2, colour: 'red', shape: 'square' },
    { kind: 'shape', row: 1, col: 0, colour: 'blue', shape: 'circle' },
    { kind: 'shape', row: 1, col: 1, colour: 'blue', shape: 'triangle' },
    { kind: 'shape', row: 2, col: 0, colour: 'green', shape: 'cross' },
    { kind: 'digit', row: 3, col: 0, colour: 'red', digit: 3 },
    { kind: 'digit', row: 3, col: 1, colour: 'red', digit: 5 },
    { kind: 'digit', row: 3, col: 2, colour: 'blue', digit: 4 },
  ],
};
const difference: CheckableProblem = { scene, question: 'how many more red shapes than blue shapes are there?', answer: '1' };
const times: CheckableProblem = { scene, question: 'what is the number of red shapes plus the number of blue shapes, times 3?', answer: '15' };
const compare: CheckableProblem = {
  scene,
  question: 'are there more red shapes or more blue shapes?',
  answer: 'red shapes',
  choices: ['red shapes', 'blue shapes', 'equal'],
};

describe('checkStep: facts about the image', () => {
  it.each([
    ['the number of red shapes is 3.', 'correct'],
    ['the number of red shapes is 4.', 'incorrect'],
    ['the number of red circles is 2.', 'correct'],
    ['the number of red circles is 3.', 'incorrect'],
    ['the number of circles is 3.', 'correct'],
    ['the number of crosses is 1.', 'correct'],
    ['the number of shapes is 6.', 'correct'],
    ['the number of digits is 3.', 'correct'],
    ['the number of red digits is 2.', 'correct'],
    ['the number of purple shapes is 0.', 'correct'],
    ['The Number of  red shapes is 3', 'correct'],
    ['the red digits are 3 and 5.', 'correct'],
    ['the red digits are 5 and 3.', 'correct'],
    ['the red digits are 3, 5 and 4.', 'incorrect'],
    ['the red digit is 3.', 'incorrect'],
    ['the blue digit is 4.', 'correct'],
  ] as const)('%j -> %s', (step, label) => {
    expect(checkStep(difference, step, [])).toBe(label);
  });
});

describe('checkStep: arithmetic and comparisons', () => {
  const counts = ['the number of red shapes is 3.', 'the number of blue shapes is 2.'];
  it.each([
    ['3 - 2 = 1.', counts, 'correct'],
    ['3 - 2 = 2.', counts, 'incorrect'],
    ['5 - 2 = 3.', counts, 'incorrect'],
    ['3 + 2 = 5.', counts, 'correct'],
    ['3 is more than 2.', counts, 'correct'],
    ['2 is less than 3.', counts, 'correct'],
    ['2 is more than 3.', counts, 'incorrect'],
    ['3 is equal to 3.', counts, 'correct'],
    ['3 - 2 = 1.', [], 'incorrect'],
  ] as const)('%j after %j -> %s', (step, previous, label) => {
    expect(checkStep(difference, step, previous)).toBe(label);
  });

  it('grounds operands in the question too', () => {
    expect(checkStep(times, '5 * 3 = 15.', [...counts, '3 + 2 = 5.'])).toBe('correct');
    expect(checkStep(times, '5 * 4 = 20.', [...counts, '3 + 2 = 5.'])).toBe('incorrect');
  });
});

describe('checkStep: text outside the templates', () => {
  it.each(['i think there are three red shapes.', 'the number of pink shapes is 2.', 'the number of red is 2.', '', '3 + = 5.', 'the number of red big circles is 2.', 'the pink digits are 1 and 2.'])(
    '%j is unparseable',
    (step) => {
      expect(checkStep(difference, step, [])).toBe('unparseable');
      expect(parseStep(step)).toBeNull();
    },
  );

  it('parses every template into a claim', () => {
    expect(parseStep('the number of red circles is 2.')).toEqual({ type: 'count', subject: { kind: 'shape', colour: 'red', shape: 'circle' }, value: 2 });
    expect(parseStep('the red digits are 3, 5 and 1.')).toEqual({ type: 'list', colour: 'red', values: [3, 5, 1] });
    expect(parseStep('8 * 3 = 24.')).toEqual({ type: 'arithmetic', left: 8, op: '*', right: 3, result: 24 });
    expect(parseStep('1 - 3 = -2.')).toEqual({ type: 'arithmetic', left: 1, op: '-', right: 3, result: -2 });
    expect(parseStep('3 is equal to 3.')).toEqual({ type: 'relation', left: 3, relation: 'equal to', right: 3 });
  });
});

describe('checkResponse', () => {
  it('flags wrong counts even when the final answer is right', () => {
    const response = 'the number of red shapes is 4.\n\nthe number of blue shapes is 3.\n\n4 - 3 = 1.\n\n# Answer\n\n1';
    const check = checkResponse(difference, response);
    expect(check.answerCorrect).toBe(true);
    expect(check.steps.map((s) => s.label)).toEqual(['incorrect', 'incorrect', 'correct']);
    expect(check.steps.map((s) => s.prefixCorrect)).toEqual([false, false, false]);
    expect(check.allStepsCorrect).toBe(false);
    expect(check.firstErrorIndex).toBe(0);
  });

  it('accepts a fully correct response', () => {
    const check = checkResponse(difference, 'the number of red shapes is 3.\n\nthe number of blue shapes is 2.\n\n3 - 2 = 1.\n\n# Answer\n\n1');
    expect(check.steps.map((s) => s.prefixCorrect)).toEqual([true, true, true]);
    expect(check).toMatchObject({ answer: '1', answerCorrect: true, allStepsCorrect: true, firstErrorIndex: null });
  });

  it('reports a later error and a wrong answer', () => {
    const check = checkResponse(difference, 'the number of red shapes is 3.\n\nthe number of blue shapes is 2.\n\n3 - 2 = 2.\n\n# Answer\n\n2');
    expect(check.steps.map((s) => s.label)).toEqual(['correct', 'correct', 'incorrect']);
    expect(check.steps.map((s) => s.prefixCorrect)).toEqual([true, true, false]);
    expect(check).toMatchObject({ answerCorrect: false, firstErrorIndex: 2 });
  });

  it('handles a response with no answer and unparseable steps', () => {
    const check = checkResponse(difference, 'red is bigger.\n\nthe number of red shapes is 3.');
    expect(check.steps.map((s) => s.label)).toEqual(['unparseable', 'correct']);
    expect(check.steps.map((s) => s.prefixCorrect)).toEqual([false, false]);
    expect(check).toMatchObject({ answer: null, answerCorrect: false, allStepsCorrect: false, firstErrorIndex: 0 });
    expect(checkResponse(difference, '')).toMatchObject({ steps: [], allStepsCorrect: false, firstErrorIndex: null });
  });

  it('maps a choice letter to its option', () => {
    const steps = 'the number of red shapes is 3.\n\nthe number of blue shapes is 2.\n\n3 is more than 2.';
    expect(checkResponse(compare, `${steps}\n\n# Answer\n\nA`).answerCorrect).toBe(true);
    expect(checkResponse(compare, `${steps}\n\n# Answer\n\nred shapes`).answerCorrect).toBe(true);
    expect(checkResponse(compare, `${steps}\n\n# Answer\n\nB`).answerCorrect).toBe(false);
  });
});

describe('the tally chain style', () => {
  const redShapes =
    'red circle = 1, red circle = 2, red square = 3, blue circle, blue triangle, green cross, red 3, red 5 and blue 4, so the number of red shapes is 3.';

  it('judges a tallied count by its tally and its count', () => {
    expect(parseStep(redShapes)).toMatchObject({ type: 'count', value: 3, tally: redShapes.split(', so ')[0] });
    expect(checkStep(difference, redShapes, [])).toBe('correct');
    // The count is right but the tally numbers a blue circle and skips the red square.
    const wrongTally = redShapes.replace('red square = 3, blue circle', 'red square, blue circle = 3');
    expect(checkStep(difference, wrongTally, [])).toBe('incorrect');
    // Judged by its count alone, the same step is right; a wrong count stays wrong.
    expect(checkStep(difference, wrongTally, [], { ignoreTally: true })).toBe('correct');
    expect(checkStep(difference, wrongTally.replace('is 3.', 'is 2.'), [], { ignoreTally: true })).toBe('incorrect');
    expect(checkStep(difference, redShapes.replace('is 3.', 'is 2.'), [])).toBe('incorrect');
    expect(checkStep(difference, `red 3 = 1, red 5 = 2, so the number of red digits is 2.`, [])).toBe('incorrect');
    // A scene with nothing in it tallies as "nothing".
    const empty: CheckableProblem = { scene: { objects: [] }, question: 'how many red shapes are there?', answer: '0' };
    expect(checkStep(empty, 'nothing, so the number of red shapes is 0.', [])).toBe('correct');
    expect(checkStep(empty, 'red circle = 1, so the number of red shapes is 0.', [])).toBe('incorrect');
  });

  it('rewrites every count step of a generated problem and nothing else', () => {
    const problems = generateSplit('validation', { seed: 3, size: 60 });
    for (const p of problems) {
      expect(goldCot(p, 'plain')).toBe(p.cot);
      const tallied = goldCot(p, 'tally');
      const check = checkResponse(p, tallied);
      expect(check, tallied).toMatchObject({ answerCorrect: true, allStepsCorrect: true });
      const steps = check.steps.map((s) => s.text);
      expect(steps).toHaveLength(p.steps.length);
      steps.forEach((step, i) => {
        const plain = p.steps[i]!;
        if (parseStep(plain)?.type === 'count') expect(step.endsWith(`, so ${plain}`), step).toBe(true);
        else expect(step).toBe(plain);
      });
    }
    expect(problems.some((p) => p.steps.some((s) => parseStep(s)?.type === 'count'))).toBe(true);
    expect(isCotStyle('tally') && !isCotStyle('tallied')).toBe(true);
  });
});

describe('the worked answer style', () => {
  const worked = (family: Parameters<typeof generateProblem>[0]['family'], seed: number) =>
    withAnswerStyle(generateProblem({ family, style: 'plain', seed }), 'worked');
  const readings = (p: { steps: readonly string[] }) =>
    p.steps.flatMap((s) => {
      const c = parseStep(s);
      return c?.type === 'count' ? [String(c.value)] : c?.type === 'list' ? c.values.map(String) : [];
    });

  it('writes every reading of the gold chain before the answer, once', () => {
    for (let seed = 0; seed < 20; seed++) {
      const short = generateProblem({ family: 'compare', style: 'plain', seed });
      const p = worked('compare', seed);
      expect(p.answer).toBe([...readings(short), short.answer].join(', '));
      expect(p.choices).toBeUndefined();
      // The readings are the counts of A and B: "2, 1, red shapes".
      expect(p.answer.split(', ')).toHaveLength(3);
      expect(worked('count', seed).answer).toBe(generateProblem({ family: 'count', style: 'plain', seed }).answer);
      const both = generateProblem({ family: 'count-both', style: 'plain', seed });
      expect(worked('count-both', seed).answer).toBe(`${readings(both)[0]}, ${both.answer}`);
      const sum = generateProblem({ family: 'digit-sum', style: 'plain', seed });
      expect(worked('digit-sum', seed).answer).toBe([...readings(sum), sum.answer].join(', '));
    }
    expect(isAnswerStyle('worked') && isAnswerStyle('short') && !isAnswerStyle('long')).toBe(true);
  });

  it('keeps the prompts and asks the readings to be right', () => {
    const short = generateSplit('validation', { seed: 3, size: 60 });
    const long = generateSplit('validation', { seed: 3, size: 60, answers: 'worked' });
    expect(long.map((p) => p.hash)).toEqual(short.map((p) => p.hash));
    expect(generateSplit('validation', { seed: 3, size: 60, answers: 'short' })).toEqual(short);
    long.forEach((p, i) => {
      const s = short[i]!;
      expect(p.answer.endsWith(s.answer)).toBe(true);
      for (const style of ['plain', 'tally'] as const) {
        expect(checkResponse(p, goldCot(p, style))).toMatchObject({ answerCorrect: true, allStepsCorrect: true });
        // A short answer no longer reaches a worked gold answer unless nothing was read first.
        expect(checkResponse(p, goldCot(s, style)).answerCorrect).toBe(p.answer === s.answer);
      }
    });
    expect(long.filter((p, i) => p.answer !== short[i]!.answer).length).toBeGreaterThan(40);
  });

  it('rejects a right result reached through a wrong reading', () => {
    const p = worked('difference', 5);
    const [a, b, d] = p.answer.split(', ').map(Number) as [number, number, number];
    expect(checkResponse(p, `x\n\n# Answer\n\n${a}, ${b}, ${d}`).answerCorrect).toBe(true);
    expect(checkResponse(p, `x\n\n# Answer\n\n${a + 1}, ${b + 1}, ${d}`).answerCorrect).toBe(false);
  });
});
