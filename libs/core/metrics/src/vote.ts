import { normalizeAnswer } from '@mstar/cot';
import type { AnswerOptions } from '@mstar/cot';

/** The winning answer of a majority vote. */
export interface Vote {
  /** The first raw answer seen in the winning group. */
  readonly answer: string;
  /** Its normalised form, the key the vote counted by. */
  readonly normalized: string;
  readonly count: number;
}

/**
 * Majority vote over extracted answers, counting answers that normalise equally (so "3.0" and
 * "3" vote together); null answers abstain. Ties go to the group seen first. Null when nobody
 * voted.
 */
export function majorityVote(answers: readonly (string | null)[], options: AnswerOptions = {}): Vote | null {
  const groups = new Map<string, { answer: string; count: number }>();
  for (const answer of answers) {
    if (answer === null) continue;
    const key = normalizeAnswer(answer, options);
    if (key.length === 0) continue;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { answer, count: 1 });
    else group.count++;
  }
  let best: Vote | null = null;
  // Map iteration follows insertion order, so a strict ">" keeps the first-seen group on ties.
  for (const [normalized, { answer, count }] of groups) {
    if (best === null || count > best.count) best = { answer, normalized, count };
  }
  return best;
}
