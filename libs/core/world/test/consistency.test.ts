import { formatCot } from '@mstar/cot';
import { describe, expect, it } from 'vitest';
import { FAMILIES, chainInconsistency, generateProblem, goldCot, isConsistentChain, withAnswerStyle } from '../src/index.js';

describe('chainInconsistency: gold chains', () => {
  it.each(FAMILIES)('passes every gold chain of %s, in both chain and both answer styles', (family) => {
    for (let seed = 0; seed < 40; seed++) {
      const problem = generateProblem({ family, style: 'plain', seed });
      for (const p of [problem, withAnswerStyle(problem, 'worked')]) {
        for (const style of ['plain', 'tally'] as const) expect(chainInconsistency(p.question, goldCot(p, style))).toBeNull();
      }
    }
  });
});

const chain = (steps: string[], answer: string): string => formatCot(steps, answer);
const compare = 'are there more red shapes or more circles?';
const countBoth = 'how many red circles are there?';

describe('chainInconsistency: what it rejects, without the image', () => {
  it.each([
    ['a count of the wrong subject', compare, chain(['the number of red shapes is 2.', 'the number of red shapes is 1.', '2 is more than 1.'], '2, 1, red shapes'), /counts \[red shapes; red shapes\] where the question needs \[red shapes; circles\]/],
    ['the two counts swapped', compare, chain(['the number of circles is 1.', 'the number of red shapes is 2.', '2 is more than 1.'], '2, 1, red shapes'), /needs \[red shapes; circles\]/],
    ['a count-both chain without the colour count', countBoth, chain(['the number of red circles is 2.'], '2'), /needs \[red shapes; red circles\]/],
    ['a step off the templates', countBoth, chain(['i see two red circles.', 'the number of red circles is 2.'], '2'), /step 1 follows no template/],
    ['a comparison the wrong way round', compare, chain(['the number of red shapes is 2.', 'the number of circles is 1.', '1 is less than 2.'], '2, 1, red shapes'), /not of the counts the question compares/],
    ['a false comparison', compare, chain(['the number of red shapes is 2.', 'the number of circles is 1.', '2 is less than 1.'], '2, 1, circles'), /2 is not less than 1/],
    ['wrong arithmetic', 'how many more red shapes than circles are there?', chain(['the number of red shapes is 3.', 'the number of circles is 1.', '3 - 1 = 1.'], '3, 1, 1'), /3 - 1 is not 1/],
    ['an invented operand', 'how many more red shapes than circles are there?', chain(['the number of red shapes is 3.', 'the number of circles is 1.', '4 - 2 = 2.'], '3, 1, 2'), /uses a value no earlier step stated/],
    ['an answer the chain does not derive', compare, chain(['the number of red shapes is 2.', 'the number of circles is 1.', '2 is more than 1.'], '2, 1, circles'), /is not what the chain derives/],
    ['worked readings that are not the chain\'s', compare, chain(['the number of red shapes is 2.', 'the number of circles is 1.', '2 is more than 1.'], '3, 1, red shapes'), /is not what the chain derives/],
    ['a digit sum of the wrong colour', 'what is the sum of the red digits?', chain(['the blue digits are 3 and 4.', '3 + 4 = 7.'], '3, 4, 7'), /first list the red digits/],
    ['a count in a digit sum', 'what is the sum of the red digits?', chain(['the number of red digits is 2.', 'the red digits are 3 and 4.', '3 + 4 = 7.'], '2, 3, 4, 7'), /counts \[red digits\] where the question needs \[\]/],
    ['a tally that numbers a non-member', countBoth, chain(['red circle = 1, blue circle = 2 and green 4, so the number of red shapes is 2.', 'red circle = 1, blue circle and green 4, so the number of red circles is 1.'], '2, 1'), /numbers the blue circle, which is not one/],
    ['a tally that skips a member', countBoth, chain(['red circle = 1, red square and green 4, so the number of red shapes is 1.', 'red circle = 1, red square and green 4, so the number of red circles is 1.'], '1, 1'), /does not number the red square as 2/],
    ['a tally whose numbering disagrees with its count', countBoth, chain(['red circle = 1, red square = 2 and green 4, so the number of red shapes is 3.', 'red circle = 1, red square and green 4, so the number of red circles is 1.'], '3, 1'), /numbers 2 objects but the count is 3/],
    ['two tallies that read different images', countBoth, chain(['red circle = 1, red square = 2 and green 4, so the number of red shapes is 2.', 'red circle = 1, red circle = 2 and green 4, so the number of red circles is 2.'], '2, 2'), /two tallies of the chain name different objects/],
    ['a tally of an object the world has not', countBoth, chain(['red hexagon and red circle = 1, so the number of red shapes is 1.', 'red hexagon and red circle = 1, so the number of red circles is 1.'], '1, 1'), /names an object that does not exist/],
    ['a question off the templates', 'what colour is the sky?', chain(['the number of red shapes is 1.'], '1'), /no template of the world/],
    ['no steps', countBoth, '# Answer\n\n2', /has no step/],
  ])('%s', (_name, question, response, reason) => {
    expect(chainInconsistency(question, response)).toMatch(reason);
    expect(isConsistentChain(question, response)).toBe(false);
  });

  it('accepts a consistent chain whatever the image holds, in the short or the worked answer', () => {
    const steps = ['red circle = 1, blue 4 and red square = 2, so the number of red shapes is 2.', 'red circle = 1, blue 4 and red square, so the number of red circles is 1.'];
    expect(chainInconsistency(countBoth, chain(steps, '2, 1'))).toBeNull();
    expect(chainInconsistency(countBoth, chain(steps, '1'))).toBeNull();
    expect(isConsistentChain(compare, chain(['the number of red shapes is 1.', 'the number of circles is 1.', '1 is equal to 1.'], 'equal'))).toBe(true);
  });
});
