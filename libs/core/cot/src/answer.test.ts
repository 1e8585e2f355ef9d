import { describe, expect, it } from 'vitest';
import { answersMatch, normalizeAnswer } from './index.js';

describe('normalizeAnswer', () => {
  it.each([
    ['  Red Shapes ', 'red shapes'],
    ['3.0', '3'],
    ['1,000', '1000'],
    ['+7', '7'],
    ['-0', '0'],
    ['.5', '0.5'],
    ['12.', '12'],
    ['1,00', '1,00'],
    ['ＡＢＣ', 'abc'],
    ['a  \t b', 'a b'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeAnswer(input)).toBe(expected);
  });

  it('maps letters to options only when choices are given', () => {
    const choices = ['red shapes', 'Blue Shapes', 'equal'];
    expect(normalizeAnswer('B', { choices })).toBe('blue shapes');
    expect(normalizeAnswer('(b)', { choices })).toBe('blue shapes');
    expect(normalizeAnswer('B.', { choices })).toBe('blue shapes');
    expect(normalizeAnswer('(B) blue shapes', { choices })).toBe('blue shapes');
    expect(normalizeAnswer('B', {})).toBe('b');
    expect(normalizeAnswer('D', { choices })).toBe('d');
  });
});

describe('answersMatch', () => {
  const choices = ['red shapes', 'blue shapes', 'equal'];
  it.each<[string | null, string, { choices?: string[] }, boolean]>([
    ['3', '3', {}, true],
    ['3.0', '3', {}, true],
    ['1,000', '1000', {}, true],
    [' RED ', 'red', {}, true],
    ['4', '3', {}, false],
    [null, '3', {}, false],
    ['', '', {}, false],
    ['B', 'blue shapes', { choices }, true],
    ['(B)', 'blue shapes', { choices }, true],
    ['blue shapes', 'B', { choices }, true],
    ['(A) blue shapes', 'blue shapes', { choices }, false],
    ['(A) blue shapes', 'red shapes', { choices }, false],
    ['C', 'equal', { choices }, true],
    ['B', 'blue shapes', {}, false],
    ['three', '3', {}, false],
    ['ü', 'Ü', {}, true],
  ])('%j vs %j %j -> %s', (predicted, gold, options, expected) => {
    expect(answersMatch(predicted, gold, options)).toBe(expected);
  });
});
