/** Colour names, in palette order. */
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple'] as const;
export type Colour = (typeof COLOURS)[number];

/** Shape names, in mask order. */
export const SHAPES = ['square', 'circle', 'triangle', 'cross'] as const;
export type Shape = (typeof SHAPES)[number];

/**
 * Digits drawn as objects. Zero is left out: a sum over digits then always grows. The font has
 * 1-9; the world uses 1-6 so that digit reading and the sums stay learnable by the warm-up.
 */
export const DIGITS = [1, 2, 3, 4, 5, 6] as const;

/** The image is a GRID x GRID board of CELL-pixel cells: one object per cell, one ViT patch per cell. */
export const GRID = 4;
export const CELL = 8;
export const IMAGE_SIZE = GRID * CELL;

/** What an object is, regardless of where it is. */
export type ObjectAttributes =
  | { readonly kind: 'shape'; readonly colour: Colour; readonly shape: Shape }
  | { readonly kind: 'digit'; readonly colour: Colour; readonly digit: number };

interface Placed {
  readonly row: number;
  readonly col: number;
}

export type ShapeObject = Extract<ObjectAttributes, { kind: 'shape' }> & Placed;
export type DigitObject = Extract<ObjectAttributes, { kind: 'digit' }> & Placed;
export type WorldObject = ShapeObject | DigitObject;

/** The ground truth of an image: its objects in reading order (row, then column). */
export interface Scene {
  readonly objects: readonly WorldObject[];
}

export function pluralShape(shape: Shape): string {
  return shape === 'cross' ? 'crosses' : `${shape}s`;
}

/**
 * What a count or comparison talks about. kind 'shape' with no shape = any shape; kind 'digit'
 * never has a shape. The colour is optional for both kinds.
 */
export interface Subject {
  readonly kind: 'shape' | 'digit';
  readonly colour?: Colour;
  readonly shape?: Shape;
}

export function subjectPhrase(subject: Subject): string {
  const noun = subject.kind === 'digit' ? 'digits' : subject.shape !== undefined ? pluralShape(subject.shape) : 'shapes';
  return subject.colour !== undefined ? `${subject.colour} ${noun}` : noun;
}

export function matchesSubject(object: ObjectAttributes, subject: Subject): boolean {
  if (object.kind !== subject.kind) return false;
  if (subject.colour !== undefined && object.colour !== subject.colour) return false;
  return subject.shape === undefined || (object.kind === 'shape' && object.shape === subject.shape);
}

export function countSubject(scene: Scene, subject: Subject): number {
  return scene.objects.filter((o) => matchesSubject(o, subject)).length;
}

/** Sorts objects into reading order so that equal scenes have one representation. */
export function readingOrder(objects: readonly WorldObject[]): WorldObject[] {
  return [...objects].sort((a, b) => a.row - b.row || a.col - b.col);
}
