import { PNG } from 'pngjs';
import { ImageDecodeError, WorldError } from './errors.js';
import { CELL, GRID, IMAGE_SIZE } from './scene.js';
import type { Colour, Scene, Shape } from './scene.js';

/** An 8-bit RGB image, row-major, 3 bytes per pixel. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** Visual styles: `plain` is the training distribution, `outline` the out-of-domain one. */
export const STYLES = ['plain', 'outline'] as const;
export type StyleName = (typeof STYLES)[number];

type Rgb = readonly [number, number, number];

interface Style {
  readonly background: Rgb;
  readonly palette: Readonly<Record<Colour, Rgb>>;
  /** Draw shapes as 1-pixel outlines instead of filled masks. */
  readonly outline: boolean;
}

const STYLE_TABLE: Readonly<Record<StyleName, Style>> = {
  plain: {
    background: [245, 245, 245],
    palette: {
      red: [220, 30, 30],
      green: [30, 160, 50],
      blue: [30, 70, 220],
      yellow: [230, 190, 0],
      purple: [140, 40, 180],
    },
    outline: false,
  },
  // Dark background, lighter shades and outlined shapes: the same objects, a shifted look, like a
  // benchmark drawn by someone else.
  outline: {
    background: [25, 25, 35],
    palette: {
      red: [255, 120, 110],
      green: [120, 230, 120],
      blue: [110, 160, 255],
      yellow: [255, 240, 120],
      purple: [210, 130, 255],
    },
    outline: true,
  },
};

function mask(rows: readonly string[]): boolean[][] {
  return rows.map((r) => [...r].map((c) => c === 'X'));
}

// 6x6 masks drawn 1 pixel inside the 8x8 cell, so neighbouring objects never touch.
const SHAPE_MASKS: Readonly<Record<Shape, boolean[][]>> = {
  square: mask(['XXXXXX', 'XXXXXX', 'XXXXXX', 'XXXXXX', 'XXXXXX', 'XXXXXX']),
  circle: mask(['..XX..', '.XXXX.', 'XXXXXX', 'XXXXXX', '.XXXX.', '..XX..']),
  triangle: mask(['..XX..', '..XX..', '.XXXX.', '.XXXX.', 'XXXXXX', 'XXXXXX']),
  cross: mask(['..XX..', '..XX..', 'XXXXXX', 'XXXXXX', '..XX..', '..XX..']),
};

// A 5x7 pixel font for 1-9, drawn at column 1, row 1 of the cell.
const DIGIT_MASKS: readonly (boolean[][] | undefined)[] = [
  undefined,
  mask(['..X..', '.XX..', '..X..', '..X..', '..X..', '..X..', '.XXX.']),
  mask(['.XXX.', 'X...X', '....X', '...X.', '..X..', '.X...', 'XXXXX']),
  mask(['XXXXX', '...X.', '..X..', '...X.', '....X', 'X...X', '.XXX.']),
  mask(['...X.', '..XX.', '.X.X.', 'X..X.', 'XXXXX', '...X.', '...X.']),
  mask(['XXXXX', 'X....', 'XXXX.', '....X', '....X', 'X...X', '.XXX.']),
  mask(['..XX.', '.X...', 'X....', 'XXXX.', 'X...X', 'X...X', '.XXX.']),
  mask(['XXXXX', '....X', '...X.', '..X..', '.X...', '.X...', '.X...']),
  mask(['.XXX.', 'X...X', 'X...X', '.XXX.', 'X...X', 'X...X', '.XXX.']),
  mask(['.XXX.', 'X...X', 'X...X', '.XXXX', '....X', '...X.', '.XX..']),
];

/** Keeps the mask pixels that touch the outside (4-neighbourhood) or the mask's border. */
function outlineOf(m: boolean[][]): boolean[][] {
  const at = (y: number, x: number): boolean => m[y]?.[x] ?? false;
  return m.map((row, y) =>
    row.map((on, x) => on && !(at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1))),
  );
}

function paint(data: Uint8Array, m: boolean[][], top: number, left: number, colour: Rgb): void {
  m.forEach((row, y) =>
    row.forEach((on, x) => {
      if (!on) return;
      const p = ((top + y) * IMAGE_SIZE + left + x) * 3;
      data[p] = colour[0];
      data[p + 1] = colour[1];
      data[p + 2] = colour[2];
    }),
  );
}

/** Draws a scene as an IMAGE_SIZE x IMAGE_SIZE RGB image. */
export function renderScene(scene: Scene, styleName: StyleName): RgbImage {
  const style = STYLE_TABLE[styleName];
  const data = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE * 3);
  for (let p = 0; p < data.length; p += 3) {
    data[p] = style.background[0];
    data[p + 1] = style.background[1];
    data[p + 2] = style.background[2];
  }
  for (const object of scene.objects) {
    if (object.row < 0 || object.row >= GRID || object.col < 0 || object.col >= GRID) {
      throw new WorldError(`object at row ${object.row}, column ${object.col} is outside the ${GRID}x${GRID} grid`);
    }
    const top = object.row * CELL + 1;
    const left = object.col * CELL + 1;
    const colour = style.palette[object.colour];
    if (object.kind === 'shape') {
      const m = SHAPE_MASKS[object.shape];
      paint(data, style.outline ? outlineOf(m) : m, top, left, colour);
    } else {
      const m = DIGIT_MASKS[object.digit];
      if (m === undefined) throw new WorldError(`digit ${object.digit} has no glyph (1-9 are drawn)`);
      paint(data, m, top, left, colour);
    }
  }
  return { width: IMAGE_SIZE, height: IMAGE_SIZE, data };
}

/** Encodes an RGB image as an 8-bit RGB PNG (deterministic bytes for equal pixels). */
export function encodePng(image: RgbImage): Uint8Array {
  if (image.data.length !== image.width * image.height * 3) {
    throw new WorldError(`RGB buffer has ${image.data.length} bytes, expected ${image.width * image.height * 3}`);
  }
  const png = new PNG({ width: image.width, height: image.height, inputHasAlpha: false });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

/** Decodes any PNG to 8-bit RGB (alpha is dropped, palettes and 16-bit depths are expanded). */
export function decodePng(bytes: Uint8Array): RgbImage {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (cause) {
    throw new ImageDecodeError(`not a valid PNG: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const { width, height } = png;
  const rgba = png.data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
    data[j] = rgba[i] ?? 0;
    data[j + 1] = rgba[i + 1] ?? 0;
    data[j + 2] = rgba[i + 2] ?? 0;
  }
  return { width, height, data };
}
