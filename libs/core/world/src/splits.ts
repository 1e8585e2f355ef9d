import { createRng, deriveSeed } from '@mstar/metrics';
import { withAnswerStyle } from './chains.js';
import type { AnswerStyle } from './chains.js';
import { WorldError } from './errors.js';
import { COMPOSE_FAMILIES, IN_DOMAIN_FAMILIES } from './families.js';
import type { FamilyName } from './families.js';
import { generateProblem } from './problem.js';
import type { Problem } from './problem.js';
import type { StyleName } from './render.js';

export const SPLIT_NAMES = ['train', 'validation', 'test', 'test-ood-compose', 'test-ood-style'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export interface SplitSpec {
  readonly families: readonly FamilyName[];
  readonly style: StyleName;
  /**
   * The share [from, to) of the content-hash space this split draws from. The in-domain splits
   * (same families, same style) partition the space, so a problem belongs to exactly one of them
   * whatever the seeds and sizes. The out-of-domain splits cannot meet them or each other by
   * construction: test-ood-style is the only `outline` split, and test-ood-compose asks questions
   * no in-domain family asks (pairs of colour+shape subjects) or, for digit-sum-long, about four
   * digits of a colour where digit-sum places two or three. They therefore take the whole space.
   */
  readonly hashRange: readonly [number, number];
  readonly defaultSize: number;
}

export const SPLITS: Readonly<Record<SplitName, SplitSpec>> = {
  train: { families: IN_DOMAIN_FAMILIES, style: 'plain', hashRange: [0, 0.85], defaultSize: 20_000 },
  validation: { families: IN_DOMAIN_FAMILIES, style: 'plain', hashRange: [0.85, 0.9], defaultSize: 250 },
  test: { families: IN_DOMAIN_FAMILIES, style: 'plain', hashRange: [0.9, 1], defaultSize: 1000 },
  'test-ood-compose': { families: COMPOSE_FAMILIES, style: 'plain', hashRange: [0, 1], defaultSize: 1000 },
  'test-ood-style': { families: IN_DOMAIN_FAMILIES, style: 'outline', hashRange: [0, 1], defaultSize: 1000 },
};

/** Where a content hash falls in [0, 1): its first 32 bits as a fraction. */
export function hashPosition(hash: string): number {
  return Number.parseInt(hash.slice(0, 8), 16) / 0x1_0000_0000;
}

export interface GenerateSplitOptions {
  readonly seed: number;
  /** Defaults to the split's defaultSize. */
  readonly size?: number;
  /** What the gold answers say (withAnswerStyle); default 'short'. The prompts do not change. */
  readonly answers?: AnswerStyle;
}

function isSplitName(name: string): name is SplitName {
  return (SPLIT_NAMES as readonly string[]).includes(name);
}

/**
 * The problems of a split, a pure function of (name, seed, size). Families are drawn uniformly;
 * candidates outside the split's hash range, or repeating one already drawn, are skipped. A
 * smaller size gives a prefix of a larger one, and every answer style the same prompts.
 */
export function generateSplit(name: string, options: GenerateSplitOptions): Problem[] {
  if (!isSplitName(name)) throw new WorldError(`unknown split "${name}"; expected one of ${SPLIT_NAMES.join(', ')}`);
  const spec = SPLITS[name];
  const size = options.size ?? spec.defaultSize;
  if (!Number.isInteger(size) || size < 0) throw new WorldError(`split size must be a non-negative integer, got ${size}`);
  const [from, to] = spec.hashRange;
  // Expected attempts are size / (to - from); the margin covers duplicates and bad luck.
  const maxAttempts = Math.ceil((size / (to - from)) * 4) + 1000;
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (let attempt = 0; problems.length < size; attempt++) {
    if (attempt >= maxAttempts) {
      throw new WorldError(`split "${name}" found only ${problems.length} of ${size} distinct problems in ${maxAttempts} attempts`);
    }
    const seed = deriveSeed(options.seed, name, attempt);
    const family = createRng(seed).pick(spec.families);
    const problem = generateProblem({ family, style: spec.style, seed, split: name, index: problems.length });
    const position = hashPosition(problem.hash);
    if (position < from || position >= to || seen.has(problem.hash)) continue;
    seen.add(problem.hash);
    problems.push(withAnswerStyle(problem, options.answers ?? 'short'));
  }
  return problems;
}
