import { formatCot, splitSteps } from '@mstar/cot';
import { stepBoundaries, TINY_CONFIG, REFERENCE_CONFIG, paramCount } from '@mstar/models';
import { prmResponseIds } from '@mstar/recipes';
import { createWorldTokenizer, generateSplit } from '@mstar/world';
import { describe, expect, test } from 'vitest';
import { prmForwardFlops } from '../src/flops.js';

const tokenizer = createWorldTokenizer();
const SEP = tokenizer.stepSeparatorId;

// The service scores at the step boundaries of @mstar/recipes' prmResponseIds (what PRM training
// reads too); these are the properties it relies on.
describe('prmResponseIds', () => {
  const odd = [
    'one.\n\ntwo.\n\n# Answer\n\n2',
    'one.\r\n\r\ntwo.\r\n\r\n# Answer\r\n\r\n2',
    '\n\n\none.\n \t\ntwo.\n\n\n\n\nthree.',
    'one.\ntwo on the next line.\n\n# Answer\n\nfoo\n\nbar # Answer\n\n3',
    'just one truncated step without an answer',
  ];
  test.each(odd)('one boundary per step, each closing its step: %j', (response) => {
    const steps = splitSteps(response);
    const ids = prmResponseIds(tokenizer, response);
    const boundaries = stepBoundaries(ids, SEP);
    expect(boundaries).toHaveLength(steps.length);
    // The tokens up to each boundary are exactly the steps so far.
    boundaries.forEach((b, k) => {
      const text = tokenizer.decode(ids.slice(0, b + 1)).replace(/\n\n$/, '');
      expect(text).toBe(steps.slice(0, k + 1).join('\n\n'));
    });
  });

  test('is empty for a response without steps', () => {
    for (const r of ['', '   ', '# Answer\n\n3', '\n\n\n\n# Answer\n\n3']) expect(prmResponseIds(tokenizer, r)).toEqual([]);
  });

  test('is a prefix of the whole response for canonical CoT answers (so it never takes more context)', () => {
    const problems = generateSplit('validation', { seed: 1, size: 40 });
    for (const p of problems) {
      const all = tokenizer.encode(p.cot);
      const ids = prmResponseIds(tokenizer, p.cot);
      expect(all.slice(0, ids.length)).toEqual(ids);
      expect(all[ids.length]).toBe(SEP);
    }
    const ids = prmResponseIds(tokenizer, formatCot(['a.', 'b.'], 'c'));
    expect(tokenizer.decode(ids)).toBe('a.\n\nb.');
  });
});

test('prmForwardFlops counts 2 x weights per patch and per position, plus attention', () => {
  // TINY by hand. Per patch: patch embedding 16x3x8x8, one vision layer (4 x 16x16 + 2 x 32x16),
  // projector 32x16 + 32x32 = 6656. Per position: two layers of (32x32 + 2 x 16x32 + 32x32 + 3 x 64x32)
  // and the 1x32 score head = 18464.
  const L = 40;
  expect(prmForwardFlops(TINY_CONFIG, L)).toBe(2 * 16 * 6656 + 4 * 16 * 16 * 16 + 2 * L * 18464 + 2 * 4 * L * L * 32);
  // REFERENCE: the per-position part is 2 x (weights less embeddings) to within the vision tower.
  const perPosition = (prmForwardFlops(REFERENCE_CONFIG, 2) - prmForwardFlops(REFERENCE_CONFIG, 1) - 6 * 4 * 3 * 256) / 2;
  expect(perPosition).toBeLessThan(paramCount(REFERENCE_CONFIG, 'prm'));
  expect(perPosition).toBeGreaterThan(0.8 * paramCount(REFERENCE_CONFIG, 'prm'));
});
