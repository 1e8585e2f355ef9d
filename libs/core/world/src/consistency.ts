import { answersMatch, extractAnswer, splitSteps } from '@mstar/cot';
import { COLOUR_SET, parseSubject, parseStep } from './checker.js';
import type { Claim } from './checker.js';
import { DIGITS, SHAPES, matchesSubject, subjectPhrase } from './scene.js';
import type { Colour, ObjectAttributes, Shape, Subject } from './scene.js';
import { applyOperator, relationOf } from './steps.js';

/** What a question asks, as far as its chain's plan goes: the subjects it names, in order. */
type QuestionPlan =
  | { readonly kind: 'counts'; readonly subjects: readonly Subject[]; readonly comparison: boolean }
  | { readonly kind: 'digit-sum'; readonly colour: Colour };

// The question templates of families.ts, most specific first.
const PAIR_QUESTIONS: readonly { readonly pattern: RegExp; readonly comparison: boolean }[] = [
  { pattern: /^are there more ([a-z ]+) or more ([a-z ]+)\?$/, comparison: true },
  { pattern: /^how many more ([a-z ]+) than ([a-z ]+) are there\?$/, comparison: false },
  { pattern: /^how many ([a-z ]+) and ([a-z ]+) are there in total\?$/, comparison: false },
  { pattern: /^what is the number of ([a-z ]+) plus the number of ([a-z ]+), times \d+\?$/, comparison: false },
];
const SINGLE_QUESTION = /^how many ([a-z ]+) are there\?$/;
const DIGIT_SUM_QUESTION = /^what is the sum of the ([a-z]+) digits\?$/;

function planOf(question: string): QuestionPlan | null {
  const q = question.trim().toLowerCase().replace(/\s+/g, ' ');
  const sum = DIGIT_SUM_QUESTION.exec(q);
  if (sum !== null) return COLOUR_SET.has(sum[1] ?? '') ? { kind: 'digit-sum', colour: sum[1] as Colour } : null;
  for (const { pattern, comparison } of PAIR_QUESTIONS) {
    const m = pattern.exec(q);
    if (m === null) continue;
    const a = parseSubject(m[1] ?? '');
    const b = parseSubject(m[2] ?? '');
    return a !== null && b !== null ? { kind: 'counts', subjects: [a, b], comparison } : null;
  }
  const single = SINGLE_QUESTION.exec(q);
  const subject = single !== null ? parseSubject(single[1] ?? '') : null;
  return subject !== null ? { kind: 'counts', subjects: [subject], comparison: false } : null;
}

/**
 * The count steps a question's chain takes, in order: each subject it names, a colour-and-shape
 * subject ("red circles") after the shapes of its colour ("red shapes"), as the world's chains do.
 */
function countPlan(subjects: readonly Subject[]): Subject[] {
  return subjects.flatMap((s) => (s.kind === 'shape' && s.colour !== undefined && s.shape !== undefined ? [{ kind: 'shape' as const, colour: s.colour }, s] : [s]));
}

const SHAPE_SET = new Set<string>(SHAPES);
const DIGIT_SET = new Set<string>(DIGITS.map(String));

/** One object named in a tally ("red circle", "blue 4") and the number it was given, if any. */
interface TallyEntry {
  readonly name: string;
  readonly object: ObjectAttributes;
  readonly number?: number;
}

function parseTally(tally: string): TallyEntry[] | null {
  if (tally === 'nothing') return [];
  const entries: TallyEntry[] = [];
  for (const part of tally.split(/, | and /)) {
    const m = /^([a-z]+) ([a-z]+|\d)(?: = (\d+))?$/.exec(part);
    if (m === null || !COLOUR_SET.has(m[1] ?? '')) return null;
    const colour = m[1] as Colour;
    const noun = m[2] ?? '';
    let object: ObjectAttributes;
    if (SHAPE_SET.has(noun)) object = { kind: 'shape', colour, shape: noun as Shape };
    else if (DIGIT_SET.has(noun)) object = { kind: 'digit', colour, digit: Number(noun) };
    else return null;
    entries.push({ name: `${colour} ${noun}`, object, ...(m[3] !== undefined ? { number: Number(m[3]) } : {}) });
  }
  return entries;
}

/** Why a tallied count contradicts itself, or null: it numbers exactly its subject's objects, 1 to n. */
function tallyProblem(entries: readonly TallyEntry[], claim: Extract<Claim, { type: 'count' }>): string | null {
  let n = 0;
  for (const entry of entries) {
    const matches = matchesSubject(entry.object, claim.subject);
    if (matches && entry.number !== ++n) return `the tally of ${subjectPhrase(claim.subject)} does not number the ${entry.name} as ${n}`;
    if (!matches && entry.number !== undefined) return `the tally of ${subjectPhrase(claim.subject)} numbers the ${entry.name}, which is not one`;
  }
  return n === claim.value ? null : `the tally of ${subjectPhrase(claim.subject)} numbers ${n} objects but the count is ${claim.value}`;
}

/**
 * Why a response's chain of thought contradicts its question or itself, or null when it does not.
 * The check reads the question and the response only, never the image, so it can verify samples
 * that no ground truth labels (a rule-based verifier, as `selection.chain_check: CONSISTENT` uses it):
 * - every step follows one of the world's templates (steps.ts);
 * - the count steps count what the question names, in its order, in the world's chain form (a
 *   colour-and-shape subject after the shapes of its colour); a digit sum lists the digits of the
 *   question's colour first and counts nothing;
 * - each tally numbers exactly the objects it names that match its subject, 1 to n, and n is the
 *   count; every tally of the chain names the same objects (one image);
 * - arithmetic and comparisons hold, on values the question or an earlier step stated, and a
 *   comparison compares the question's two counts in its order;
 * - the final answer is what the chain derives, in the short or the worked form (withAnswerStyle).
 * Whether a count is true of the image is left to the answer check: a chain that counts the right
 * things and reaches the gold worked answer has read them right.
 */
export function chainInconsistency(question: string, response: string): string | null {
  const plan = planOf(question);
  if (plan === null) return 'the question follows no template of the world';
  const texts = splitSteps(response);
  if (texts.length === 0) return 'the response has no step';
  const claims: Claim[] = [];
  for (const [i, text] of texts.entries()) {
    const claim = parseStep(text);
    if (claim === null) return `step ${i + 1} follows no template`;
    claims.push(claim);
  }

  const counts = claims.filter((c): c is Extract<Claim, { type: 'count' }> => c.type === 'count');
  const lists = claims.filter((c): c is Extract<Claim, { type: 'list' }> => c.type === 'list');
  const expected = plan.kind === 'counts' ? countPlan(plan.subjects) : [];
  const named = counts.map((c) => subjectPhrase(c.subject));
  const wanted = expected.map(subjectPhrase);
  if (named.join('; ') !== wanted.join('; ')) return `the chain counts [${named.join('; ')}] where the question needs [${wanted.join('; ')}]`;
  if (plan.kind === 'digit-sum' ? lists.length !== 1 || claims[0] !== lists[0] || lists[0]?.colour !== plan.colour : lists.length > 0) {
    return plan.kind === 'digit-sum' ? `the chain must first list the ${plan.colour} digits, once` : 'the chain lists digits the question does not ask about';
  }

  let objects: string | undefined;
  for (const claim of counts) {
    if (claim.tally === undefined) continue;
    const entries = parseTally(claim.tally);
    if (entries === null) return `the tally of ${subjectPhrase(claim.subject)} names an object that does not exist`;
    const problem = tallyProblem(entries, claim);
    if (problem !== null) return problem;
    const names = entries.map((e) => e.name).join(', ');
    if (objects !== undefined && names !== objects) return 'two tallies of the chain name different objects';
    objects = names;
  }

  const stated = new Set((question.match(/\d+/g) ?? []).map(Number));
  const readings: number[] = [];
  let result: string | undefined;
  for (const claim of claims) {
    switch (claim.type) {
      case 'count':
        readings.push(claim.value);
        stated.add(claim.value);
        result = undefined;
        break;
      case 'list':
        readings.push(...claim.values);
        claim.values.forEach((v) => stated.add(v));
        result = undefined;
        break;
      case 'arithmetic':
        if (applyOperator(claim.left, claim.op, claim.right) !== claim.result) return `${claim.left} ${claim.op} ${claim.right} is not ${claim.result}`;
        if (!stated.has(claim.left) || !stated.has(claim.right)) return `${claim.left} ${claim.op} ${claim.right} uses a value no earlier step stated`;
        stated.add(claim.result);
        result = String(claim.result);
        break;
      case 'relation': {
        if (relationOf(claim.left, claim.right) !== claim.relation) return `${claim.left} is not ${claim.relation} ${claim.right}`;
        const [a, b] = plan.kind === 'counts' && plan.comparison ? plan.subjects : [];
        const valueOf = (s: Subject | undefined): number | undefined => counts.findLast((c) => s !== undefined && subjectPhrase(c.subject) === subjectPhrase(s))?.value;
        if (a === undefined || claim.left !== valueOf(a) || claim.right !== valueOf(b)) return 'the comparison is not of the counts the question compares, in its order';
        result = claim.relation === 'more than' ? subjectPhrase(a) : claim.relation === 'less than' ? subjectPhrase(b as Subject) : 'equal';
        break;
      }
    }
  }

  const answer = extractAnswer(response);
  const short = result ?? String(readings[readings.length - 1]);
  const worked = [...readings, ...(result !== undefined ? [result] : [])].join(', ');
  if (!answersMatch(answer, short) && !answersMatch(answer, worked)) return `the answer ${JSON.stringify(answer)} is not what the chain derives (${JSON.stringify(worked)})`;
  return null;
}

/** True when chainInconsistency finds nothing. */
export function isConsistentChain(question: string, response: string): boolean {
  return chainInconsistency(question, response) === null;
}
