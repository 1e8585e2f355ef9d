import { describe, expect, it } from 'vitest';
import { IMAGE_SIZE, ImageDecodeError, WorldError, decodePng, encodePng, renderScene } from '../src/index.js';
import type { Scene } from '../src/index.js';

const pixel = (data: Uint8Array, x: number, y: number): number[] => {
  const p = (y * IMAGE_SIZE + x) * 3;
  return [data[p] ?? -1, data[p + 1] ?? -1, data[p + 2] ?? -1];
};

const scene: Scene = {
  objects: [
    { kind: 'shape', row: 0, col: 0, colour: 'red', shape: 'square' },
    { kind: 'digit', row: 3, col: 3, colour: 'blue', digit: 1 },
  ],
};

describe('renderScene', () => {
  it('draws one object per 8x8 cell on a 32x32 RGB canvas', () => {
    const image = renderScene(scene, 'plain');
    expect([image.width, image.height, image.data.length]).toEqual([32, 32, 32 * 32 * 3]);
    expect(pixel(image.data, 0, 0)).toEqual([245, 245, 245]);
    expect(pixel(image.data, 1, 1)).toEqual([220, 30, 30]);
    expect(pixel(image.data, 6, 6)).toEqual([220, 30, 30]);
    expect(pixel(image.data, 7, 7)).toEqual([245, 245, 245]);
    // The digit 1's top stroke starts at column 2 of its glyph: cell (3,3) origin is (24,24), glyph at +1.
    expect(pixel(image.data, 24 + 1 + 2, 24 + 1)).toEqual([30, 70, 220]);
    expect(pixel(image.data, 24 + 1, 24 + 1)).toEqual([245, 245, 245]);
  });

  it('draws the out-of-domain style with outlines on a dark background', () => {
    const image = renderScene(scene, 'outline');
    expect(pixel(image.data, 0, 0)).toEqual([25, 25, 35]);
    expect(pixel(image.data, 1, 1)).toEqual([255, 120, 110]);
    expect(pixel(image.data, 3, 3)).toEqual([25, 25, 35]);
  });

  it('rejects objects off the grid', () => {
    expect(() => renderScene({ objects: [{ kind: 'shape', row: 4, col: 0, colour: 'red', shape: 'circle' }] }, 'plain')).toThrow(WorldError);
  });
});

describe('PNG', () => {
  it('round-trips pixels exactly and deterministically', () => {
    const image = renderScene(scene, 'plain');
    const bytes = encodePng(image);
    expect([...bytes.slice(1, 4)].map((b) => String.fromCharCode(b)).join('')).toBe('PNG');
    expect(encodePng(image)).toEqual(bytes);
    const decoded = decodePng(bytes);
    expect(decoded.width).toBe(32);
    expect(decoded.data).toEqual(image.data);
  });

  it('fails with a typed error on bytes that are not a PNG', () => {
    expect(() => decodePng(new Uint8Array([1, 2, 3]))).toThrow(ImageDecodeError);
  });
});
