import { InvalidArgumentError } from '@mstar/errors';
import type { PlainTensor } from '@mstar/runtime';
import { floatOutput, int64Tensor } from './tensors.js';
import type { GenerationRunner } from './runner.js';

/**
 * A prompt: token ids (with one `imageTokenId` per image in `pixelValues` — float32 [images, c, h, w],
 * or [c, h, w] for one — replaced by that image's features), or ready-made prefix embeddings. `id` names the prompt's random streams (default: its
 * index in the request), so a prompt keeps its samples wherever it sits in a batch.
 */
export type GenerationPrompt =
  | { readonly inputIds: readonly number[]; readonly pixelValues?: PlainTensor; readonly id?: string | number }
  | { readonly prefixEmbeds: PlainTensor; readonly id?: string | number };

export interface PromptOptions {
  readonly padId: number;
  readonly imageTokenId?: number | undefined;
}

/** A prompt's embedded prefix: `length` rows of `hidden` floats. */
export interface EmbeddedPrompt {
  readonly length: number;
  readonly embeds: Float32Array;
}

interface IdPrompt {
  index: number;
  ids: readonly number[];
  pixels: PlainTensor | undefined;
}

function checkIds(p: IdPrompt, options: PromptOptions): void {
  const field = `prompts[${p.index}].inputIds`;
  if (p.ids.length === 0) throw new InvalidArgumentError(`${field} is empty`, { field });
  const bad = p.ids.findIndex((id) => !Number.isInteger(id) || id < 0);
  if (bad >= 0) throw new InvalidArgumentError(`${field}[${bad}] = ${p.ids[bad]} is not a token id`, { field });
  const pf = `prompts[${p.index}].pixelValues`;
  if (p.pixels !== undefined) {
    if (options.imageTokenId === undefined) throw new InvalidArgumentError(`${pf} is given but no imageTokenId says where the image goes`, { field: 'imageTokenId' });
    if (p.pixels.type !== 'float32' || p.pixels.dims.length !== 4) {
      throw new InvalidArgumentError(`${pf} must be float32 [images, channels, height, width] or [channels, height, width], got ${p.pixels.type} [${p.pixels.dims.join(', ')}]`, { field: pf });
    }
  }
  const slots = options.imageTokenId === undefined ? 0 : p.ids.filter((id) => id === options.imageTokenId).length;
  const images = p.pixels?.dims[0] ?? 0;
  if (slots !== images) {
    throw new InvalidArgumentError(`${field} has ${slots} image tokens (${options.imageTokenId}) but ${pf} holds ${images} images`, { field });
  }
}

function checkPrefix(index: number, t: PlainTensor, hidden: number): EmbeddedPrompt {
  const field = `prompts[${index}].prefixEmbeds`;
  const dims = t.dims.length === 3 && t.dims[0] === 1 ? t.dims.slice(1) : t.dims;
  if (t.type !== 'float32' || dims.length !== 2 || dims[1] !== hidden || (dims[0] ?? 0) < 1) {
    throw new InvalidArgumentError(`${field} must be float32 [1, length >= 1, ${hidden}] or [length, ${hidden}], got ${t.type} [${t.dims.join(', ')}]`, { field });
  }
  return { length: dims[0] as number, embeds: t.data };
}

/**
 * Embeds every prompt once: one `embed` run for all id prompts (right-padded with padId; the
 * embedding is per token, so padding changes nothing) and one `vision` run for all their images.
 */
export async function embedPrompts(
  runner: GenerationRunner,
  prompts: readonly GenerationPrompt[],
  options: PromptOptions,
  stats: { embedRuns: number; visionRuns: number },
  beforeRun: () => void,
): Promise<EmbeddedPrompt[]> {
  const hidden = runner.layout.hidden;
  const out: (EmbeddedPrompt | undefined)[] = prompts.map((p, i) => ('prefixEmbeds' in p ? checkPrefix(i, p.prefixEmbeds, hidden) : undefined));
  const idPrompts: IdPrompt[] = [];
  prompts.forEach((p, index) => {
    if (!('inputIds' in p)) return;
    // One image as [channels, height, width] (what @mstar/models' preprocessImage returns) counts as [1, c, h, w].
    const pixels = p.pixelValues?.dims.length === 3 ? { ...p.pixelValues, dims: [1, ...p.pixelValues.dims] } : p.pixelValues;
    idPrompts.push({ index, ids: p.inputIds, pixels });
  });
  for (const p of idPrompts) checkIds(p, options);
  if (idPrompts.length === 0) return out as EmbeddedPrompt[];

  const images = idPrompts.flatMap((p) => (p.pixels === undefined ? [] : [p.pixels]));
  let features: Float32Array | undefined;
  let imageTokens = 0;
  if (images.length > 0) {
    const [, c, h, w] = (images[0] as PlainTensor).dims as [number, number, number, number];
    const mismatch = images.find((im) => im.dims[1] !== c || im.dims[2] !== h || im.dims[3] !== w);
    if (mismatch !== undefined) {
      throw new InvalidArgumentError(`pixelValues differ in size ([${mismatch.dims.join(', ')}] vs [_, ${c}, ${h}, ${w}]); one vision batch needs one size`, { field: 'pixelValues' });
    }
    const count = images.reduce((n, im) => n + (im.dims[0] as number), 0);
    const pixels = new Float32Array(count * c * h * w);
    let at = 0;
    for (const im of images) {
      pixels.set(im.data as Float32Array, at);
      at += im.data.length;
    }
    beforeRun();
    stats.visionRuns++;
    const vision = await runner.run('vision', { pixel_values: { type: 'float32', dims: [count, c, h, w], data: pixels } });
    const f = floatOutput(vision, 'vision', 'image_features', [count, undefined, hidden]);
    features = f.data;
    imageTokens = f.dims[1] as number;
  }

  const width = Math.max(...idPrompts.map((p) => p.ids.length));
  // Image placeholders may lie outside the embedding table; their rows are replaced anyway.
  const lookup = (id: number): number => (id === options.imageTokenId ? options.padId : id);
  beforeRun();
  stats.embedRuns++;
  const embedded = await runner.run('embed', {
    input_ids: int64Tensor([idPrompts.length, width], (i) => {
      const ids = (idPrompts[Math.floor(i / width)] as IdPrompt).ids;
      const j = i % width;
      return j < ids.length ? lookup(ids[j] as number) : options.padId;
    }),
  });
  const table = floatOutput(embedded, 'embed', 'inputs_embeds', [idPrompts.length, width, hidden]).data;

  let image = 0;
  idPrompts.forEach((p, r) => {
    const length = p.ids.length + (p.pixels === undefined ? 0 : (p.pixels.dims[0] as number) * (imageTokens - 1));
    const embeds = new Float32Array(length * hidden);
    let at = 0;
    p.ids.forEach((id, j) => {
      if (id === options.imageTokenId && features !== undefined) {
        embeds.set(features.subarray(image * imageTokens * hidden, (image + 1) * imageTokens * hidden), at);
        image++;
        at += imageTokens * hidden;
      } else {
        embeds.set(table.subarray((r * width + j) * hidden, (r * width + j + 1) * hidden), at);
        at += hidden;
      }
    });
    out[p.index] = { length, embeds };
  });
  return out as EmbeddedPrompt[];
}
