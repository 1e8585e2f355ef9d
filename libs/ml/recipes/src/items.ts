import { IMAGE_PLACEHOLDER, checkableFromRecord, goldCot, renderScene } from '@mstar/world';
import type { CotStyle, DatasetRecord, Problem, RgbImage, Scene, TextTokenizer } from '@mstar/world';
import { RecipeConfigError } from './errors.js';

/**
 * One prompt to train on or evaluate: what the model sees (image, question), the gold answer and,
 * when known, the gold chain of thought. Built from a world Problem or from any loaded dataset
 * record, so the harness runs on the built-in benchmark and on MathV360K-style files alike.
 */
export interface EvalItem {
  readonly id: string;
  /** The question family (world meta.family), `unknown` when the data does not say. */
  readonly family: string;
  readonly question: string;
  readonly image: RgbImage;
  readonly answer: string;
  readonly choices?: readonly string[];
  /** The gold response (chain of thought), needed for SFT only. */
  readonly response?: string;
  /** The image's ground truth, for the built-in world's items and records with meta.scene (the chain check IMAGE reads it). */
  readonly scene?: Scene;
}

/** A uniform mid-grey image: the image-blind control replaces every image with it. */
export function blankImage(size: number): RgbImage {
  return { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
}

export interface ItemOptions {
  /** Replace the image by blankImage (the control that shows the image matters). */
  readonly blankImages?: boolean;
  /** How a world problem's gold chain writes its count steps (`goldCot`); default 'plain'. */
  readonly cot?: CotStyle;
}

export function itemFromProblem(problem: Problem, options: ItemOptions = {}): EvalItem {
  const image = renderScene(problem.scene, problem.style);
  return {
    id: problem.id,
    family: problem.family,
    question: problem.question,
    image: options.blankImages === true ? blankImage(image.width) : image,
    answer: problem.answer,
    ...(problem.choices !== undefined ? { choices: problem.choices } : {}),
    response: goldCot(problem, options.cot ?? 'plain'),
    scene: problem.scene,
  };
}

export function itemFromRecord(record: DatasetRecord, options: ItemOptions = {}): EvalItem {
  if (record.image === undefined) throw new RecipeConfigError(`record ${record.id} (line ${record.line}) has no decoded image; load the dataset with loadImages on`);
  const family = record.meta?.family;
  return {
    id: record.id,
    family: typeof family === 'string' ? family : 'unknown',
    question: record.question,
    image: options.blankImages === true ? blankImage(record.image.width) : record.image,
    answer: record.answer,
    ...(record.choices !== undefined ? { choices: record.choices } : {}),
    response: record.response,
    ...(record.meta?.scene !== undefined ? { scene: checkableFromRecord(record).scene } : {}),
  };
}

/** The prompt ids: `<s>`, then the human turn `<image>\n<question>` (one image token, expanded by the model). */
export function promptIds(tokenizer: TextTokenizer, question: string): number[] {
  return [tokenizer.specialIds.bos, ...tokenizer.encode(`${IMAGE_PLACEHOLDER}\n${question}`)];
}

/** The SFT target: the gold response followed by `</s>`, so the model learns to stop. */
export function responseIds(tokenizer: TextTokenizer, item: EvalItem): number[] {
  if (item.response === undefined) throw new RecipeConfigError(`item ${item.id} has no gold response to train on`);
  return [...tokenizer.encode(item.response), tokenizer.specialIds.eos];
}
