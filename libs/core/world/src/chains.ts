import { formatCot } from '@mstar/cot';
import { parseStep } from './checker.js';
import type { Problem } from './problem.js';
import { tallyStep } from './steps.js';

/**
 * How a gold chain of thought writes its count steps. 'plain' (the problem's `cot`) states the
 * count; 'tally' first goes through the scene's objects in reading order, numbering each one the
 * count is about, so that counting is a scan of local decisions rather than one look at the image.
 */
export const COT_STYLES = ['plain', 'tally'] as const;
export type CotStyle = (typeof COT_STYLES)[number];

export function isCotStyle(value: string): value is CotStyle {
  return (COT_STYLES as readonly string[]).includes(value);
}

/** The problem's gold chain of thought in `style`. */
export function goldCot(problem: Problem, style: CotStyle): string {
  if (style === 'plain') return problem.cot;
  const steps = problem.steps.map((step) => {
    const claim = parseStep(step);
    return claim?.type === 'count' ? tallyStep(problem.scene, claim.subject, claim.value) : step;
  });
  return formatCot(steps, problem.answer);
}

/**
 * What a gold answer says. 'short' is the problem's own answer: a count, a sum, one of three
 * comparison words. 'worked' writes before it every value the gold chain reads off the image (each
 * count, each listed digit), in chain order, comma separated: "2, 1, red shapes" for "are there
 * more red shapes or more blue shapes?", "3, 5, 8" for the sum of a 3 and a 5, "4, 1" for "how
 * many red circles?" after counting 4 red shapes. A chain whose readings are wrong then rarely
 * reaches the gold answer by luck, which a short answer of a few possible values often does.
 */
export const ANSWER_STYLES = ['short', 'worked'] as const;
export type AnswerStyle = (typeof ANSWER_STYLES)[number];

export function isAnswerStyle(value: string): value is AnswerStyle {
  return (ANSWER_STYLES as readonly string[]).includes(value);
}

/**
 * The problem with its answer (and its plain chain's answer line) in `style`. A worked answer has
 * no answer options: a letter cannot carry the readings. When the chain ends in a count (count,
 * count-both), that count is the answer and is not written twice.
 */
export function withAnswerStyle(problem: Problem, style: AnswerStyle): Problem {
  if (style === 'short') return problem;
  const claims = problem.steps.map(parseStep);
  const readings = claims.flatMap((c) => (c?.type === 'count' ? [c.value] : c?.type === 'list' ? c.values : []));
  const endsInCount = claims[claims.length - 1]?.type === 'count';
  const answer = [...readings, ...(endsInCount ? [] : [problem.answer])].join(', ');
  const { choices: _choices, ...rest } = problem;
  return { ...rest, answer, cot: formatCot(problem.steps, answer) };
}
