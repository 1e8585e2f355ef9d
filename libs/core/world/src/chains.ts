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
