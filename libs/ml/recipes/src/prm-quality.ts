import { answersMatch, extractAnswer } from '@mstar/cot';
import { aggregate, auc, majorityVote, rankByScore } from '@mstar/metrics';
import type { Aggregation } from '@mstar/metrics';
import { checkResponse } from '@mstar/world';
import type { CheckableProblem } from '@mstar/world';
import { RecipeConfigError } from './errors.js';

/** One prompt's sampled responses and the PRM's score at each of their steps (`[]` for a response without steps). */
export interface ScoredPrompt {
  readonly problem: CheckableProblem;
  readonly responses: readonly string[];
  readonly stepScores: readonly (readonly number[])[];
}

export interface PrmQuality {
  readonly prompts: number;
  /** Responses per prompt (the K of best-of-K). */
  readonly k: number;
  readonly aggregation: Aggregation;
  /** Step-level discrimination against the world checker's ground truth. */
  readonly steps: {
    /** Steps with a PRM score (every step of every response). */
    readonly scored: number;
    /** Of those, the share the checker finds correct (an unparseable step counts as incorrect). */
    readonly correctShare: number;
    /** AUC of the step score for "this step is correct". */
    readonly auc: number;
    /** AUC for "this step and every one before it are correct" (what a Monte-Carlo label estimates). */
    readonly prefixAuc: number;
  };
  /** Accuracy of one answer picked from the K responses of each prompt. */
  readonly bestOfK: {
    /** The response with the highest aggregated PRM score (ties: the earlier one; no steps ranks last). */
    readonly prm: number;
    /** The majority answer over the K responses (ties: the first seen). */
    readonly majority: number;
    /** A response drawn uniformly (its expectation: the mean share of correct responses). */
    readonly random: number;
    /** At least one of the K is correct (Pass@K): the ceiling of any picker. */
    readonly oracle: number;
  };
}

/**
 * How well a PRM judges a policy's samples: step-level AUC against the world's checker, and the
 * accuracy of best-of-K by PRM against majority vote and a random pick over the same samples.
 */
export function prmQuality(prompts: readonly ScoredPrompt[], aggregation: Aggregation = 'min'): PrmQuality {
  if (prompts.length === 0) throw new RecipeConfigError('PRM quality needs at least one prompt', { field: 'prompts' });
  const k = prompts[0]!.responses.length;
  if (k === 0) throw new RecipeConfigError('PRM quality needs at least one response per prompt', { field: 'prompts' });
  const scores: number[] = [];
  const stepCorrect: boolean[] = [];
  const prefixCorrect: boolean[] = [];
  let prm = 0;
  let majority = 0;
  let random = 0;
  let oracle = 0;
  prompts.forEach((p, i) => {
    if (p.responses.length !== k || p.stepScores.length !== k) {
      throw new RecipeConfigError(`prompt ${i}: ${p.responses.length} responses and ${p.stepScores.length} score lists, expected ${k} of each`, { field: 'prompts' });
    }
    const options = p.problem.choices !== undefined ? { choices: p.problem.choices } : {};
    const checks = p.responses.map((r) => checkResponse(p.problem, r));
    checks.forEach((check, j) => {
      const row = p.stepScores[j]!;
      if (row.length !== check.steps.length) throw new RecipeConfigError(`prompt ${i}, response ${j}: ${row.length} step scores for ${check.steps.length} steps`, { field: 'prompts' });
      check.steps.forEach((step, s) => {
        scores.push(row[s]!);
        stepCorrect.push(step.label === 'correct');
        prefixCorrect.push(step.prefixCorrect);
      });
    });
    const ranked = rankByScore(checks.map((c, j) => ({ correct: c.answerCorrect, score: p.stepScores[j]!.length > 0 ? aggregate(p.stepScores[j]!, aggregation) : Number.NEGATIVE_INFINITY })));
    if (ranked[0]!.correct) prm++;
    const vote = majorityVote(
      p.responses.map((r) => extractAnswer(r)),
      options,
    );
    if (vote !== null && answersMatch(vote.answer, p.problem.answer, options)) majority++;
    const correct = checks.filter((c) => c.answerCorrect).length;
    random += correct / k;
    if (correct > 0) oracle++;
  });
  const n = prompts.length;
  return {
    prompts: n,
    k,
    aggregation,
    steps: { scored: scores.length, correctShare: stepCorrect.filter(Boolean).length / Math.max(1, scores.length), auc: auc(scores, stepCorrect), prefixAuc: auc(scores, prefixCorrect) },
    bestOfK: { prm: prm / n, majority: majority / n, random: random / n, oracle: oracle / n },
  };
}
