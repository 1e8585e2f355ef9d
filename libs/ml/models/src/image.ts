import sharp from 'sharp';
import type { ModelConfig } from './config.js';
import { ModelInputError } from './errors.js';

/** 8-bit pixels, row-major, interleaved RGB (or RGBA, whose alpha is ignored). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/**
 * The model input for one image: Float32Array [channels, H, W] (channels first), each value
 * (pixel / 255 - mean[c]) / std[c]. The image must already be imageSize x imageSize (see `decodeImage`).
 * Training and inference both go through here, so they cannot drift apart.
 */
export function preprocessImage(image: RgbImage, config: ModelConfig): Float32Array {
  const { imageSize: size, channels, imageMean, imageStd } = config.vision;
  if (image.width !== size || image.height !== size) {
    throw new ModelInputError(`image is ${image.width}x${image.height}, the model takes ${size}x${size} (decodeImage resizes)`);
  }
  const pixels = size * size;
  const stride = image.data.length / pixels;
  if (!Number.isInteger(stride) || stride < channels || stride > 4) {
    throw new ModelInputError(`image data has ${image.data.length} bytes, not ${channels} or 4 per pixel for ${size}x${size}`);
  }
  const out = new Float32Array(channels * pixels);
  for (let c = 0; c < channels; c++) {
    const mean = imageMean[c] as number;
    const std = imageStd[c] as number;
    for (let i = 0; i < pixels; i++) out[c * pixels + i] = ((image.data[i * stride + c] as number) / 255 - mean) / std;
  }
  return out;
}

/** pixel_values [n, channels, H, W] for a batch of images. */
export function preprocessImages(images: readonly RgbImage[], config: ModelConfig): Float32Array {
  const { imageSize: size, channels } = config.vision;
  const per = channels * size * size;
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => out.set(preprocessImage(img, config), i * per));
  return out;
}

/** Decodes PNG/JPEG/WebP bytes with sharp, drops alpha and resizes (stretching) to imageSize x imageSize. */
export async function decodeImage(bytes: Uint8Array, config: ModelConfig): Promise<RgbImage> {
  const size = config.vision.imageSize;
  try {
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ModelInputError(`decoded image has ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (cause) {
    if (cause instanceof ModelInputError) throw cause;
    throw new ModelInputError(`cannot decode image (${bytes.byteLength} bytes): ${(cause as Error).message}`, { cause });
  }
}
