import type { Rng } from '@mstar/metrics';
import { COLOURS, DIGITS, GRID, SHAPES, readingOrder } from './scene.js';
import type { ObjectAttributes, Scene, WorldObject } from './scene.js';

/**
 * Perception labels for pretraining a vision encoder on the world's images: every cell of the grid
 * is one class, 0 for an empty cell, then colour-major, each colour's shapes (SHAPES order) before
 * its digits (DIGITS order). One cell is one ViT patch, so a scene gives one label per image token.
 */
export const CELL_CLASSES = 1 + COLOURS.length * (SHAPES.length + DIGITS.length);

/** The class of what a cell holds (undefined: an empty cell). */
export function cellClass(object: ObjectAttributes | undefined): number {
  if (object === undefined) return 0;
  const base = 1 + COLOURS.indexOf(object.colour) * (SHAPES.length + DIGITS.length);
  return object.kind === 'shape' ? base + SHAPES.indexOf(object.shape) : base + SHAPES.length + DIGITS.indexOf(object.digit as (typeof DIGITS)[number]);
}

/** One class per cell, row-major (GRID x GRID of them). */
export function cellLabels(scene: Scene): number[] {
  const labels = new Array<number>(GRID * GRID).fill(0);
  for (const object of scene.objects) labels[object.row * GRID + object.col] = cellClass(object);
  return labels;
}

/**
 * A scene of 0..maxObjects objects, each in a distinct uniform cell with a uniform colour and,
 * with equal odds, a uniform shape or digit: the perception corpus, independent of any question.
 */
export function randomScene(rng: Rng, maxObjects = GRID * GRID): Scene {
  const cells = rng.sample(
    Array.from({ length: GRID * GRID }, (_, i) => i),
    rng.int(Math.min(maxObjects, GRID * GRID) + 1),
  );
  const objects = cells.map((cell): WorldObject => {
    const placed = { row: Math.floor(cell / GRID), col: cell % GRID, colour: rng.pick(COLOURS) };
    return rng.int(2) === 0 ? { kind: 'shape', shape: rng.pick(SHAPES), ...placed } : { kind: 'digit', digit: rng.pick(DIGITS), ...placed };
  });
  return { objects: readingOrder(objects) };
}
