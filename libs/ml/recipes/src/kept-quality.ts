import { InvalidArgumentError } from '@mstar/errors';
import { auc } from '@mstar/metrics';
import { checkResponse, type Problem } from '@mstar/world';
import type { curationV1 } from '@mstar/contracts';

/** Kept samples, and how many of them reason right, for one question family or all. */
export interface KeptCount {
  readonly kept: number;
  /** Every step right, each tally object by object. */
  readonly allStepsRight: number;
  /**
   * Every step right when a tallied count is judged by its count alone: every value the chain
   * reads and computes is right, though a tally may misname or misnumber an object.
   */
  readonly valuesRight: number;
}

/** How sound the reasoning of an iteration's kept (answer-correct) samples is. */
export interface KeptQuality extends KeptCount {
  /** Prompts with a kept sample. */
  readonly prompts: number;
  /** Distinct (prompt, response) pairs among the kept samples: top-2 often keeps one response twice. */
  readonly distinct: number;
  readonly byFamily: Readonly<Record<string, KeptCount>>;
  /** The kept samples drawn with the gold answer as a hint (selection.rationalize), among all. */
  readonly hinted: KeptCount;
  /**
   * AUC of the recorded PRM score for "every step right" against the rest of the kept samples:
   * how well the PRM told right reasoning from a lucky answer. Null without both kinds, or when
   * every score is one value: rules that do not score (all-correct, random) record 0 for all.
   */
  readonly prmAuc: number | null;
}

/**
 * Re-checks every step of an iteration dataset's kept samples with the world's checker (a sample
 * whose answer is not its prompt's gold answer means the pool given is not the run's). The exact
 * match filter only asks for the gold final answer; a sample can reach it by a wrong count, and
 * with short answers as small as this world's (counts 0-4, one of three comparison words) often
 * does. Give the problems in the run's answer style.
 */
export function keptQuality(records: readonly curationV1.DatasetRecord[], problems: ReadonlyMap<string, Problem>): KeptQuality {
  const byFamily: Record<string, { kept: number; allStepsRight: number; valuesRight: number }> = {};
  const hinted = { kept: 0, allStepsRight: 0, valuesRight: 0 };
  let valuesRight = 0;
  const right = records.map((record, i) => {
    const problem = problems.get(record.promptId);
    if (problem === undefined) throw new InvalidArgumentError(`kept sample ${i}: prompt ${record.promptId} is not in the given pool`);
    const check = checkResponse(problem, record.response);
    // Every kept sample reached its gold answer; one that did not is being checked against another world.
    if (!check.answerCorrect) {
      throw new InvalidArgumentError(`kept sample ${i}: its answer is not the gold answer of ${record.promptId} (${problem.answer}): is this the run's world (pool size, world seed)?`);
    }
    const ok = check.allStepsCorrect;
    const values = checkResponse(problem, record.response, { ignoreTally: true }).allStepsCorrect;
    const family = (byFamily[problem.family] ??= { kept: 0, allStepsRight: 0, valuesRight: 0 });
    for (const count of record.hinted ? [family, hinted] : [family]) {
      count.kept += 1;
      if (ok) count.allStepsRight += 1;
      if (values) count.valuesRight += 1;
    }
    if (values) valuesRight += 1;
    return ok;
  });
  const allStepsRight = right.filter(Boolean).length;
  const bothKinds = allStepsRight > 0 && allStepsRight < right.length;
  const scores = records.map((r) => r.prmScore);
  const scored = new Set(scores).size > 1;
  const responses = new Set(records.map((r) => JSON.stringify([r.promptId, r.response])));
  return {
    kept: records.length,
    prompts: new Set(records.map((r) => r.promptId)).size,
    distinct: responses.size,
    allStepsRight,
    valuesRight,
    byFamily,
    hinted,
    prmAuc: bothKinds && scored ? auc(scores, right) : null,
  };
}
