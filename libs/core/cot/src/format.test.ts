import { describe, expect, it } from 'vitest';
import { CotFormatError, extractAnswer, formatCot, splitSteps, withAnswerHint } from './index.js';

describe('splitSteps', () => {
  const cases: { name: string; response: string; steps: string[] }[] = [
    { name: 'well formed', response: 'a.\n\nb.\n\n# Answer\n\n3', steps: ['a.', 'b.'] },
    { name: 'no answer marker: all blocks are steps', response: 'a.\n\nb.', steps: ['a.', 'b.'] },
    { name: 'empty response', response: '', steps: [] },
    { name: 'only the answer', response: '# Answer\n\n3', steps: [] },
    { name: 'empty blocks dropped', response: '\n\n\n\na.\n\n\n\n\n\nb.\n\n# Answer\n\n3', steps: ['a.', 'b.'] },
    { name: 'whitespace-only lines count as blank', response: '  a.  \n \t \nb.\n\n# Answer\n\n3', steps: ['a.', 'b.'] },
    { name: 'CRLF line endings', response: 'a.\r\n\r\nb.\r\n\r\n# Answer\r\n\r\n3', steps: ['a.', 'b.'] },
    { name: 'single newline stays inside a step', response: 'a\nstill a.\n\nb.\n\n# Answer\n\n3', steps: ['a\nstill a.', 'b.'] },
    {
      name: 'two answer blocks: steps end at the last one',
      response: 'a.\n\n# Answer\n\n1\n\nb.\n\n# Answer\n\n2',
      steps: ['a.', '# Answer', '1', 'b.'],
    },
    { name: 'unicode', response: 'x ≥ 3 — ok.\n\nçà.\n\n# Answer\n\n3', steps: ['x ≥ 3 — ok.', 'çà.'] },
  ];
  it.each(cases)('$name', ({ response, steps }) => {
    expect(splitSteps(response)).toEqual(steps);
  });
});

describe('extractAnswer', () => {
  const cases: { name: string; response: string; answer: string | null }[] = [
    { name: 'well formed', response: 'a.\n\n# Answer\n\n42', answer: '42' },
    { name: 'absent', response: 'a.\n\nthe answer is 42', answer: null },
    { name: 'marker with nothing after it', response: 'a.\n\n# Answer\n\n  ', answer: null },
    { name: 'last of two', response: '# Answer\n\n1\n\n# Answer\n\n2', answer: '2' },
    { name: 'same line with colon', response: 'a.\n\n# Answer: 7 ', answer: '7' },
    { name: 'surrounding whitespace', response: '# Answer\n\n\t red shapes \n', answer: 'red shapes' },
    { name: 'unicode answer', response: '# Answer\n\n½', answer: '½' },
    { name: 'case-sensitive marker', response: '# answer\n\n3', answer: null },
  ];
  it.each(cases)('$name', ({ response, answer }) => {
    expect(extractAnswer(response)).toBe(answer);
  });
});

describe('formatCot', () => {
  it('builds the method format', () => {
    expect(formatCot(['there are 3 red shapes.', '3 - 2 = 1.'], '1')).toBe(
      'there are 3 red shapes.\n\n3 - 2 = 1.\n\n# Answer\n\n1',
    );
  });

  it('allows zero steps', () => {
    expect(formatCot([], ' 5 ')).toBe('# Answer\n\n5');
  });

  it('round-trips through splitSteps and extractAnswer', () => {
    const steps = ['one.', 'two\nlines.', 'three.'];
    const text = formatCot(steps, 'blue');
    expect(splitSteps(text)).toEqual(steps);
    expect(extractAnswer(text)).toBe('blue');
  });

  it.each([
    { steps: ['  '], answer: '1', message: 'step 1 is empty' },
    { steps: ['a', 'b\n\nc'], answer: '1', message: 'step 2 contains a blank line' },
    { steps: ['# Answer'], answer: '1', message: 'step 1 contains the answer marker' },
    { steps: ['a'], answer: ' ', message: 'the answer is empty' },
  ])('rejects $message', ({ steps, answer, message }) => {
    expect(() => formatCot(steps, answer)).toThrow(CotFormatError);
    expect(() => formatCot(steps, answer)).toThrow(message);
  });
});

describe('withAnswerHint', () => {
  it('puts the trimmed answer on a line of its own after the question', () => {
    expect(withAnswerHint('how many red shapes are there?', ' 2, red shapes ')).toBe('how many red shapes are there?\n# Answer: 2, red shapes');
  });

  it('rejects an empty answer', () => {
    expect(() => withAnswerHint('how many red shapes are there?', '  ')).toThrow(CotFormatError);
  });
});
