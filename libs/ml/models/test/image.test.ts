import { encodePng, generateProblem, renderScene } from '@mstar/world';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ModelInputError, TINY_CONFIG, decodeImage, preprocessImage, preprocessImages, type RgbImage } from '../src/index.js';

const config = TINY_CONFIG;

function gradientImage(size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    data[i * 3] = i % 256;
    data[i * 3 + 1] = 255 - (i % 256);
    data[i * 3 + 2] = 128;
  }
  return { width: size, height: size, data };
}

describe('image preprocessing', () => {
  it('normalises to channels-first (x/255 - mean)/std', () => {
    const img = gradientImage(32);
    const x = preprocessImage(img, config);
    expect(x.length).toBe(3 * 32 * 32);
    const px = 37;
    expect(x[px]).toBeCloseTo((37 / 255 - 0.5) / 0.5, 6); // R plane
    expect(x[1024 + px]).toBeCloseTo(((255 - 37) / 255 - 0.5) / 0.5, 6); // G plane
    expect(x[2048 + px]).toBeCloseTo((128 / 255 - 0.5) / 0.5, 6); // B plane
    expect(Math.min(...x)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...x)).toBeLessThanOrEqual(1);
    const rgba = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 4) };
    for (let i = 0; i < 32 * 32; i++) rgba.data.set([...img.data.subarray(i * 3, i * 3 + 3), 7], i * 4);
    expect(preprocessImage(rgba, config)).toEqual(x);
    const batch = preprocessImages([img, rgba], config);
    expect(batch.subarray(3 * 1024)).toEqual(x);
  });

  it('refuses a wrongly sized image', () => {
    expect(() => preprocessImage(gradientImage(16), config)).toThrow(ModelInputError);
    expect(() => preprocessImage({ width: 32, height: 32, data: new Uint8Array(10) }, config)).toThrow(/10 bytes/);
  });

  it('decodes a world PNG exactly and resizes other sizes', async () => {
    const problem = generateProblem({ family: 'count', style: 'plain', seed: 4 });
    const image = renderScene(problem.scene, problem.style);
    const decoded = await decodeImage(encodePng(image), config);
    expect(decoded.width).toBe(32);
    expect(Buffer.from(decoded.data).equals(Buffer.from(image.data))).toBe(true);
    const big = gradientImage(64);
    const jpeg = await sharp(Buffer.from(big.data), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    const resized = await decodeImage(new Uint8Array(jpeg), config);
    expect([resized.width, resized.height, resized.data.length]).toEqual([32, 32, 32 * 32 * 3]);
    await expect(decodeImage(Uint8Array.from([1, 2, 3]), config)).rejects.toThrow(ModelInputError);
  });
});
