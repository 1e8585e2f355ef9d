import { subjectPhrase } from './scene.js';
import type { Colour, Subject } from './scene.js';

// The step templates. The generator writes them and the checker parses them (checker.ts): any
// change here must keep the two in step, which the checker tests enforce on generated problems.

export type Operator = '+' | '-' | '*';

export function countStep(subject: Subject, n: number): string {
  return `the number of ${subjectPhrase(subject)} is ${n}.`;
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
