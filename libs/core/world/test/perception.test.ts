import { createRng } from '@mstar/metrics';
import { describe, expect, it } from 'vitest';
import { CELL_CLASSES, COLOURS, DIGITS, GRID, SHAPES, cellClass, cellLabels, randomScene } from '../src/index.js';

describe('perception labels', () => {
  it('gives every object kind a distinct class after 0 for empty', () => {
    const classes = COLOURS.flatMap((colour) => [
      ...SHAPES.map((shape) => cellClass({ kind: 'shape', colour, shape })),
      ...DIGITS.map((digit) => cellClass({ kind: 'digit', colour, digit })),
    ]);
    expect(cellClass(undefined)).toBe(0);
    expect(classes).toEqual(Array.from({ length: CELL_CLASSES - 1 }, (_, i) => i + 1));
    expect(cellClass({ kind: 'digit', colour: 'green', digit: 3 })).toBe(1 + 10 + 4 + 2);
  });

  it('labels each cell row-major, empty cells 0', () => {
    const labels = cellLabels({
      objects: [
        { kind: 'shape', colour: 'red', shape: 'circle', row: 0, col: 1 },
        { kind: 'digit', colour: 'purple', digit: 6, row: 3, col: 3 },
      ],
    });
    expect(labels).toHaveLength(GRID * GRID);
    expect(labels[1]).toBe(2);
    expect(labels[15]).toBe(CELL_CLASSES - 1);
    expect(labels.filter((l) => l !== 0)).toHaveLength(2);
  });

  it('draws seeded random scenes with distinct cells and up to maxObjects objects', () => {
    const rng = createRng(3);
    const sizes = Array.from({ length: 400 }, () => {
      const scene = randomScene(rng, 5);
      expect(new Set(scene.objects.map((o) => o.row * GRID + o.col)).size).toBe(scene.objects.length);
      return scene.objects.length;
    });
    expect(Math.max(...sizes)).toBe(5);
    expect(Math.min(...sizes)).toBe(0);
    expect(randomScene(createRng(9))).toEqual(randomScene(createRng(9)));
  });
});
