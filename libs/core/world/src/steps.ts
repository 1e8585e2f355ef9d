import { matchesSubject, subjectPhrase } from './scene.js';
import type { Colour, Scene, Subject, WorldObject } from './scene.js';

// The step templates. The generator writes them and the checker parses them (checker.ts): any
// change here must keep the two in step, which the checker tests enforce on generated problems.

export type Operator = '+' | '-' | '*';

export function countStep(subject: Subject, n: number): string {
  return `the number of ${subjectPhrase(subject)} is ${n}.`;
}

function objectName(o: WorldObject): string {
  return `${o.colour} ${o.kind === 'digit' ? String(o.digit) : o.shape}`;
}

/**
 * The tally a count step is preceded by in the 'tally' chain style (see goldCot): every object
 * of the scene in reading order, each one the count is about numbered as it is met, e.g.
 * "red circle = 1, blue 4 and red square = 2" for the red shapes.
 */
export function tallyOf(scene: Scene, subject: Subject): string {
  let n = 0;
  const names = scene.objects.map((o) => (matchesSubject(o, subject) ? `${objectName(o)} = ${++n}` : objectName(o)));
  return names.length <= 1 ? (names[0] ?? 'nothing') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** A count step with its tally: "<tally>, so the number of <subject> is <n>." */
export function tallyStep(scene: Scene, subject: Subject, n: number): string {
  return `${tallyOf(scene, subject)}, so ${countStep(subject, n)}`;
}

export function listStep(colour: Colour, digits: readonly number[]): string {
  if (digits.length === 1) return `the ${colour} digit is ${digits[0]}.`;
  const head = digits.slice(0, -1).join(', ');
  return `the ${colour} digits are ${head} and ${digits[digits.length - 1]}.`;
}

export function applyOperator(a: number, op: Operator, b: number): number {
  return op === '+' ? a + b : op === '-' ? a - b : a * b;
}

export function arithmeticStep(a: number, op: Operator, b: number): string {
  return `${a} ${op} ${b} = ${applyOperator(a, op, b)}.`;
}

export type Relation = 'more than' | 'less than' | 'equal to';

export function relationOf(a: number, b: number): Relation {
  return a > b ? 'more than' : a < b ? 'less than' : 'equal to';
}

export function relationStep(a: number, b: number): string {
  return `${a} is ${relationOf(a, b)} ${b}.`;
}
