import { decodeImage } from '@mstar/models';
import type { ModelConfig } from '@mstar/models';
import { ImageDecodeError, decoderByExtension, loadDataset, pngDecoder } from '@mstar/world';
import type { ImageDecoder } from '@mstar/world';
import { itemFromRecord } from './items.js';
import type { EvalItem, ItemOptions } from './items.js';

/**
 * The world loader's decoder with real-data formats plugged in: PNG through the world's exact
 * decoder, JPEG and WebP through @mstar/models' sharp-based decodeImage, stretched to the model's
 * image size (MathV360K images come in every size).
 */
export function datasetImageDecoder(config: ModelConfig): ImageDecoder {
  const viaSharp: ImageDecoder = async (bytes, path) => {
    try {
      return await decodeImage(bytes, config);
    } catch (cause) {
      throw new ImageDecodeError(`${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  };
  const size = config.vision.imageSize;
  const png: ImageDecoder = async (bytes, path) => {
    const image = await pngDecoder(bytes, path);
    return image.width === size && image.height === size ? image : viaSharp(bytes, path);
  };
  return decoderByExtension({ '.png': png, '.jpg': viaSharp, '.jpeg': viaSharp, '.webp': viaSharp });
}

export interface LoadItemsOptions extends ItemOptions {
  readonly config: ModelConfig;
  /** Directory image paths are relative to; defaults to the JSONL file's directory. */
  readonly imageRoot?: string;
}

/** Loads a LLaVA / MathV360K-style JSONL file (PNG, JPEG or WebP images) as items for training or evaluation. */
export async function loadItems(jsonlPath: string, options: LoadItemsOptions): Promise<EvalItem[]> {
  const records = await loadDataset(jsonlPath, {
    decoder: datasetImageDecoder(options.config),
    ...(options.imageRoot !== undefined ? { imageRoot: options.imageRoot } : {}),
  });
  return records.map((r) => itemFromRecord(r, options));
}
