import { describe, expect, it } from 'vitest';
import {
  COMPOSE_FAMILIES,
  DIGITS,
  FAMILIES,
  IN_DOMAIN_FAMILIES,
  SPLITS,
  SPLIT_NAMES,
  WorldError,
  checkResponse,
  checkStep,
  generateProblem,
  generateSplit,
  hashPosition,
  problemHash,
} from '../src/index.js';
import type { Problem } from '../src/index.js';

const SIZES = { train: 1500, validation: 60, test: 150, 'test-ood-compose': 150, 'test-ood-style': 150 } as const;
const splits = Object.fromEntries(SPLIT_NAMES.map((name) => [name, generateSplit(name, { seed: 11, size: SIZES[name] })])) as Record<
  (typeof SPLIT_NAMES)[number],
  Problem[]
>;
const all = Object.values(splits).flat();

describe('generateSplit', () => {
  it('is a pure function of name, seed and size, and smaller sizes are prefixes', () => {
    const a = generateSplit('test', { seed: 5, size: 40 });
    expect(generateSplit('test', { seed: 5, size: 40 })).toEqual(a);
    expect(generateSplit('test', { seed: 5, size: 15 })).toEqual(a.slice(0, 15));
    expect(generateSplit('test', { seed: 6, size: 40 }).map((p) => p.hash)).not.toEqual(a.map((p) => p.hash));
  });

  it('keeps splits disjoint: each problem lies in its own split hash range', () => {
    const owner = new Map<string, string>();
    for (const name of SPLIT_NAMES) {
      const [from, to] = SPLITS[name].hashRange;
      for (const p of splits[name]) {
        expect(owner.get(p.hash)).toBeUndefined();
        owner.set(p.hash, name);
        const position = hashPosition(p.hash);
        expect(position >= from && position < to).toBe(true);
      }
    }
    expect(owner.size).toBe(all.length);
  });

  it('keeps the out-of-domain compose split outside the in-domain question space by construction', () => {
    const inDomainQuestions = new Set(splits.train.map((p) => p.question));
    const redDigitCounts = (p: Problem): number => p.scene.objects.filter((o) => o.kind === 'digit' && p.question.includes(` ${o.colour} digits`)).length;
    for (const p of splits['test-ood-compose']) {
      if (p.family === 'digit-sum-long') expect(redDigitCounts(p)).toBe(4);
      else expect(inDomainQuestions.has(p.question)).toBe(false);
    }
    for (const p of splits.train.filter((q) => q.family === 'digit-sum')) expect(redDigitCounts(p)).toBeLessThanOrEqual(3);
  });

  it('stays disjoint across seeds: a test problem never shows up in a train split of another seed', () => {
    const train = new Set(generateSplit('train', { seed: 12, size: 1500 }).map((p) => p.hash));
    for (const p of splits.test) expect(train.has(p.hash)).toBe(false);
  });

  it('draws the right families and style per split, with ids and indices in order', () => {
    for (const name of SPLIT_NAMES) {
      const spec = SPLITS[name];
      expect(new Set(splits[name].map((p) => p.family))).toEqual(new Set(spec.families));
      for (const [i, p] of splits[name].entries()) {
        expect(p.style).toBe(spec.style);
        expect(p.index).toBe(i);
        expect(p.id).toBe(`${name}-${String(i).padStart(5, '0')}`);
      }
    }
    expect(new Set(splits['test-ood-compose'].map((p) => p.family))).toEqual(new Set(COMPOSE_FAMILIES));
    expect(splits['test-ood-style'][0]?.style).toBe('outline');
  });

  it('uses the default size and rejects unknown splits and bad sizes', () => {
    expect(SPLITS.validation.defaultSize).toBe(250);
    expect(SPLITS.train.defaultSize).toBe(20_000);
    expect(() => generateSplit('dev', { seed: 1 })).toThrow(WorldError);
    expect(() => generateSplit('test', { seed: 1, size: -1 })).toThrow('non-negative integer');
  });
});

describe('generated problems', () => {
  it('regenerate from their seed, family and style', () => {
    for (const p of splits.validation) {
      const again = generateProblem({ family: p.family, style: p.style, seed: p.seed, split: p.split, index: p.index });
      expect(again).toEqual(p);
      expect(problemHash(p.style, p.scene, p.question)).toBe(p.hash);
    }
  });

  it('have gold CoTs whose every step and answer pass the checker', () => {
    for (const p of all) {
      const check = checkResponse(p, p.cot);
      expect(check.allStepsCorrect, p.cot).toBe(true);
      expect(check.answerCorrect, p.cot).toBe(true);
      expect(check.steps).toHaveLength(p.difficulty);
    }
  });

  it('have steps whose corrupted numbers the checker catches', () => {
    for (const p of all) {
      const first = p.steps[0] ?? '';
      // Bump the last number of the first step: a miscount or a misread digit.
      const corrupted = first.replace(/(\d+)(?!.*\d)/, (n) => String(Number(n) + 1));
      expect(checkStep(p, corrupted, []), corrupted).toBe('incorrect');
      const last = p.steps[p.steps.length - 1] ?? '';
      if (/ = /.test(last)) {
        const wrongResult = last.replace(/= (-?\d+)/, (_, n: string) => `= ${Number(n) + 1}`);
        expect(checkStep(p, wrongResult, p.steps.slice(0, -1)), wrongResult).toBe('incorrect');
      }
    }
  });

  it('spread answers and difficulties as designed', () => {
    const train = splits.train;
    const steps = (family: string): number[] => [...new Set(train.filter((p) => p.family === family).map((p) => p.difficulty))].sort();
    expect(steps('count')).toEqual([1]);
    expect(steps('count-both')).toEqual([2]);
    expect(steps('compare')).toEqual([3]);
    expect(steps('difference')).toEqual([3]);
    expect(steps('total-times')).toEqual([4]);
    expect(steps('digit-sum')).toEqual([2, 3]);
    const compose = splits['test-ood-compose'];
    expect(Math.min(...compose.map((p) => p.difficulty))).toBe(4);
    expect(Math.max(...compose.map((p) => p.difficulty))).toBe(5);
    // Compare answers: each outcome is common, so guessing one option is not enough.
    const compare = train.filter((p) => p.family === 'compare');
    const equal = compare.filter((p) => p.answer === 'equal').length / compare.length;
    expect(equal).toBeGreaterThan(0.2);
    expect(equal).toBeLessThan(0.5);
    for (const p of compare) expect(p.choices).toContain(p.answer);
    // Counts are planned uniformly over 0-4 (sums over 0-6, differences 0-3), digits are 1-6.
    const answers = (family: string): number[] => [...new Set(train.filter((p) => p.family === family).map((p) => Number(p.answer)))].sort((x, y) => x - y);
    expect(answers('count')).toEqual([0, 1, 2, 3, 4]);
    expect(answers('count-both')).toEqual([0, 1, 2, 3]);
    expect(answers('difference')).toEqual([0, 1, 2, 3]);
    expect(answers('total-times')).toEqual([0, 2, 3, 4, 6, 8, 9, 10, 12, 15, 18]);
    expect(Math.min(...answers('digit-sum'))).toBe(2);
    expect(Math.max(...answers('digit-sum'))).toBeLessThanOrEqual(18);
    for (const p of all) for (const o of p.scene.objects) if (o.kind === 'digit') expect(DIGITS).toContain(o.digit);
  });

  it('keep in-domain scenes small and the compose scenes a little more crowded', () => {
    const most = (problems: readonly Problem[]): number => Math.max(...problems.map((p) => p.scene.objects.length));
    expect(most(splits.train)).toBe(11);
    expect(most(splits['test-ood-style'])).toBeLessThanOrEqual(11);
    expect(most(splits['test-ood-compose'])).toBeGreaterThan(11);
    expect(most(splits['test-ood-compose'])).toBeLessThanOrEqual(13);
  });

  it('cover every family name', () => {
    expect([...IN_DOMAIN_FAMILIES, ...COMPOSE_FAMILIES]).toEqual([...FAMILIES]);
  });
});
