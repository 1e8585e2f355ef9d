import { answersMatch, extractAnswer, splitSteps } from '@mstar/cot';
import { COLOURS, SHAPES, countSubject, matchesSubject, pluralShape } from './scene.js';
import type { Colour, Scene, Shape, Subject } from './scene.js';
import { applyOperator, relationOf, tallyOf } from './steps.js';
import type { Operator, Relation } from './steps.js';

/** A step's verdict against the image's ground truth. */
export type StepLabel = 'correct' | 'incorrect' | 'unparseable';

/** A step parsed from one of the templates. */
export type Claim =
  | { readonly type: 'count'; readonly subject: Subject; readonly value: number; readonly tally?: string }
  | { readonly type: 'list'; readonly colour: Colour; readonly values: readonly number[] }
  | { readonly type: 'arithmetic'; readonly left: number; readonly op: Operator; readonly right: number; readonly result: number }
  | { readonly type: 'relation'; readonly left: number; readonly relation: Relation; readonly right: number };

/** What the checker needs from a problem: the truth of the image and the question. */
export interface CheckableProblem {
  readonly scene: Scene;
  readonly question: string;
  readonly answer: string;
  readonly choices?: readonly string[];
}

export const COLOUR_SET = new Set<string>(COLOURS);
const SHAPE_BY_NOUN = new Map<string, Shape>(SHAPES.flatMap((s): [string, Shape][] => [[s, s], [pluralShape(s), s]]));

const INT = '(-?\\d+)';
const COUNT = /^(?:(.+), so )?the number of ([a-z ]+) is (\d+)$/;
const LIST = /^the ([a-z]+) digits? (?:is|are) (\d+(?:, \d+)*(?: and \d+)?)$/;
const ARITHMETIC = new RegExp(`^${INT} ([+*-]) ${INT} = ${INT}$`);
const RELATION = new RegExp(`^${INT} is (more than|less than|equal to) ${INT}$`);

/** "red circles", "circles", "red shapes", "shapes", "red digits", "digits" (singular too). */
export function parseSubject(phrase: string): Subject | null {
  const words = phrase.split(' ');
  const colour = words.length === 2 ? words[0] : undefined;
  const noun = words[words.length - 1] ?? '';
  if (words.length > 2 || (colour !== undefined && !COLOUR_SET.has(colour))) return null;
  const withColour = colour !== undefined ? { colour: colour as Colour } : {};
  if (noun === 'digits' || noun === 'digit') return { kind: 'digit', ...withColour };
  if (noun === 'shapes' || noun === 'shape') return { kind: 'shape', ...withColour };
  const shape = SHAPE_BY_NOUN.get(noun);
  return shape !== undefined ? { kind: 'shape', shape, ...withColour } : null;
}

// Templates are lower case and end in a period; be lenient about case, spacing and the period so
// that a step is judged on its claim, not its typography.
function canonicalStep(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\s*\.$/, '');
}

/** Parses a step written in one of the templates; null when it follows none. */
export function parseStep(text: string): Claim | null {
  const step = canonicalStep(text);
  let m = COUNT.exec(step);
  if (m !== null) {
    const subject = parseSubject(m[2] ?? '');
    if (subject === null) return null;
    return { type: 'count', subject, value: Number(m[3]), ...(m[1] !== undefined ? { tally: m[1] } : {}) };
  }
  m = LIST.exec(step);
  if (m !== null) {
    if (!COLOUR_SET.has(m[1] ?? '')) return null;
    const values = (m[2] ?? '').split(/, | and /).map(Number);
    return { type: 'list', colour: m[1] as Colour, values };
  }
  m = ARITHMETIC.exec(step);
  if (m !== null) {
    return { type: 'arithmetic', left: Number(m[1]), op: m[2] as Operator, right: Number(m[3]), result: Number(m[4]) };
  }
  m = RELATION.exec(step);
  if (m !== null) return { type: 'relation', left: Number(m[1]), relation: m[2] as Relation, right: Number(m[3]) };
  return null;
}

function numbersIn(text: string): number[] {
  return (text.match(/-?\d+/g) ?? []).map(Number);
}

function sameMultiset(a: readonly number[], b: readonly number[]): boolean {
  const sa = [...a].sort((x, y) => x - y);
  const sb = [...b].sort((x, y) => x - y);
  return sa.length === sb.length && sa.every((v, i) => v === sb[i]);
}

export interface CheckOptions {
  /**
   * Judge a tallied count by its count alone, not its tally: the tally's object names and
   * numbering may be wrong (a misread distractor) while every value the chain uses is right.
   */
  readonly ignoreTally?: boolean;
}

/**
 * Judges one step against the image and the steps before it:
 * - a count or digit list is correct when it is true of the image (a true but irrelevant count is
 *   still correct: relevance shows in the final answer, not in the step); a count with a tally
 *   (the 'tally' chain style) also needs the tally to be the image's, object by object, unless
 *   `options.ignoreTally`;
 * - arithmetic and comparisons are correct when they hold AND every operand was stated before,
 *   in the question or an earlier step, so an invented operand is caught even when the sum is
 *   right. Earlier steps need not be correct: each step is judged locally (see checkResponse
 *   for the prefix view).
 */
export function checkStep(problem: CheckableProblem, stepText: string, previousSteps: readonly string[], options: CheckOptions = {}): StepLabel {
  const claim = parseStep(stepText);
  if (claim === null) return 'unparseable';
  const grounded = (): Set<number> => new Set([problem.question, ...previousSteps].flatMap(numbersIn));
  switch (claim.type) {
    case 'count':
      if (options.ignoreTally !== true && claim.tally !== undefined && claim.tally !== tallyOf(problem.scene, claim.subject)) return 'incorrect';
      return countSubject(problem.scene, claim.subject) === claim.value ? 'correct' : 'incorrect';
    case 'list': {
      const truth = problem.scene.objects
        .filter((o) => matchesSubject(o, { kind: 'digit', colour: claim.colour }))
        .map((o) => (o.kind === 'digit' ? o.digit : -1));
      return sameMultiset(truth, claim.values) ? 'correct' : 'incorrect';
    }
    case 'arithmetic': {
      const known = grounded();
      const holds = applyOperator(claim.left, claim.op, claim.right) === claim.result;
      return holds && known.has(claim.left) && known.has(claim.right) ? 'correct' : 'incorrect';
    }
    case 'relation': {
      const known = grounded();
      const holds = relationOf(claim.left, claim.right) === claim.relation;
      return holds && known.has(claim.left) && known.has(claim.right) ? 'correct' : 'incorrect';
    }
  }
}

export interface CheckedStep {
  readonly text: string;
  readonly label: StepLabel;
  /** True when this step and every step before it are correct (the usual PRM label). */
  readonly prefixCorrect: boolean;
}

export interface ResponseCheck {
  readonly steps: readonly CheckedStep[];
  readonly answer: string | null;
  readonly answerCorrect: boolean;
  /** Every step correct and at least one step. */
  readonly allStepsCorrect: boolean;
  /** Index of the first step that is not correct, or null. */
  readonly firstErrorIndex: number | null;
}

/** Checks every step of a response and its final answer. */
export function checkResponse(problem: CheckableProblem, response: string, options: CheckOptions = {}): ResponseCheck {
  const texts = splitSteps(response);
  let prefix = true;
  const steps = texts.map((text, i): CheckedStep => {
    const label = checkStep(problem, text, texts.slice(0, i), options);
    prefix = prefix && label === 'correct';
    return { text, label, prefixCorrect: prefix };
  });
  const answer = extractAnswer(response);
  const firstError = steps.findIndex((s) => s.label !== 'correct');
  return {
    steps,
    answer,
    answerCorrect: answersMatch(answer, problem.answer, problem.choices !== undefined ? { choices: problem.choices } : {}),
    allStepsCorrect: steps.length > 0 && firstError === -1,
    firstErrorIndex: firstError === -1 ? null : firstError,
  };
}
