import { createReadStream } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { DatasetError, ImageDecodeError } from './errors.js';
import type { DatasetIssue } from './errors.js';
import { decodePng, encodePng, renderScene } from './render.js';
import type { RgbImage } from './render.js';
import type { Problem } from './problem.js';
import type { CheckableProblem } from './checker.js';
import { COLOURS, SHAPES } from './scene.js';
import type { Colour, Shape, WorldObject } from './scene.js';

/** The placeholder marking where the image goes in the human turn (LLaVA convention). */
export const IMAGE_PLACEHOLDER = '<image>';

/** One line of a dataset file: LLaVA / MathV360K conversation format plus our own fields. */
export interface DatasetLine {
  readonly id: string;
  /** Image path relative to the image root. */
  readonly image: string;
  readonly conversations: readonly { readonly from: string; readonly value: string }[];
  readonly answer: string;
  readonly choices?: readonly string[];
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** Turns image file bytes into RGB pixels. Decoders for other formats (JPEG via sharp) plug in here. */
export type ImageDecoder = (bytes: Uint8Array, path: string) => RgbImage | Promise<RgbImage>;

export const pngDecoder: ImageDecoder = (bytes, path) => {
  try {
    return decodePng(bytes);
  } catch (cause) {
    throw new ImageDecodeError(`${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
};

/**
 * A decoder choosing by file extension (lower-cased, with the dot: ".png"). A file whose
 * extension has no decoder fails naming the extension and the known ones.
 */
export function decoderByExtension(decoders: Readonly<Record<string, ImageDecoder>>): ImageDecoder {
  return (bytes, path) => {
    const ext = extname(path).toLowerCase();
    const decoder = decoders[ext];
    if (decoder === undefined) {
      throw new ImageDecodeError(
        `${path}: no image decoder for "${ext}" (known: ${Object.keys(decoders).join(', ')}); pass one in loadDataset's decoder option`,
      );
    }
    return decoder(bytes, path);
  };
}

export const defaultImageDecoder: ImageDecoder = decoderByExtension({ '.png': pngDecoder });

/** The dataset line of a problem: the question after the image placeholder, the gold CoT as the answer turn. */
export function toDatasetLine(problem: Problem): DatasetLine {
  return {
    id: problem.id,
    image: `images/${problem.id}.png`,
    conversations: [
      { from: 'human', value: `${IMAGE_PLACEHOLDER}\n${problem.question}` },
      { from: 'gpt', value: problem.cot },
    ],
    answer: problem.answer,
    ...(problem.choices !== undefined ? { choices: problem.choices } : {}),
    meta: {
      split: problem.split,
      index: problem.index,
      family: problem.family,
      difficulty: problem.difficulty,
      style: problem.style,
      seed: problem.seed,
      hash: problem.hash,
      scene: problem.scene,
    },
  };
}

export interface WriteDatasetOptions {
  /** Defaults to data.jsonl. */
  readonly fileName?: string;
}

/** Writes `<dir>/<fileName>` (one JSON object per line) and `<dir>/images/<id>.png`. Returns the JSONL path. */
export async function writeDataset(dir: string, problems: readonly Problem[], options: WriteDatasetOptions = {}): Promise<string> {
  await mkdir(join(dir, 'images'), { recursive: true });
  const lines: string[] = [];
  for (const problem of problems) {
    const line = toDatasetLine(problem);
    await writeFile(join(dir, line.image), encodePng(renderScene(problem.scene, problem.style)));
    lines.push(JSON.stringify(line));
  }
  const path = join(dir, options.fileName ?? 'data.jsonl');
  await writeFile(path, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  return path;
}

/** A loaded dataset line. */
export interface DatasetRecord {
  readonly id: string;
  /** 1-based line in the JSONL file. */
  readonly line: number;
  /** Absolute path of the image file. */
  readonly imagePath: string;
  /** Decoded pixels, when loadImages is on. */
  readonly image?: RgbImage;
  /** The human turn without the image placeholder. */
  readonly question: string;
  /** The gpt turn: for our data, the gold chain of thought. */
  readonly response: string;
  readonly answer: string;
  readonly choices?: readonly string[];
  readonly meta?: Readonly<Record<string, unknown>>;
}

export interface LoadDatasetOptions {
  /** Directory image paths are relative to; defaults to the JSONL file's directory. */
  readonly imageRoot?: string;
  /** Defaults to defaultImageDecoder (PNG only). */
  readonly decoder?: ImageDecoder;
  /** Decode every image now (default true); false only checks that the files exist. */
  readonly loadImages?: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

type Parsed = { readonly ok: true; readonly value: Omit<DatasetRecord, 'imagePath' | 'image' | 'line'> & { readonly image: string } } | { readonly ok: false; readonly message: string };

function parseLine(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return { ok: false, message: `invalid JSON (${cause instanceof Error ? cause.message : String(cause)})` };
  }
  if (!isRecord(value)) return { ok: false, message: 'expected a JSON object' };
  const missing = ['id', 'image', 'conversations', 'answer'].filter((k) => value[k] === undefined);
  if (missing.length > 0) return { ok: false, message: `missing field(s) ${missing.map((k) => `"${k}"`).join(', ')}` };
  const { id, image, conversations, answer, choices, meta } = value;
  if (typeof id !== 'string' || id.length === 0) return { ok: false, message: '"id" must be a non-empty string' };
  if (typeof image !== 'string' || image.length === 0) return { ok: false, message: '"image" must be a non-empty string' };
  // MathV360K-style files sometimes store numeric answers as numbers.
  if (typeof answer !== 'string' && typeof answer !== 'number') return { ok: false, message: '"answer" must be a string or a number' };
  if (!Array.isArray(conversations) || conversations.length < 2) {
    return { ok: false, message: '"conversations" must be an array with a human and a gpt turn' };
  }
  const [human, gpt] = conversations as unknown[];
  if (!isRecord(human) || human.from !== 'human' || typeof human.value !== 'string') {
    return { ok: false, message: 'the first turn must be {"from": "human", "value": string}' };
  }
  if (!isRecord(gpt) || gpt.from !== 'gpt' || typeof gpt.value !== 'string') {
    return { ok: false, message: 'the second turn must be {"from": "gpt", "value": string}' };
  }
  if (!human.value.includes(IMAGE_PLACEHOLDER)) return { ok: false, message: `the human turn has no ${IMAGE_PLACEHOLDER} placeholder` };
  if (choices !== undefined && !(Array.isArray(choices) && choices.every((c) => typeof c === 'string'))) {
    return { ok: false, message: '"choices" must be an array of strings' };
  }
  if (meta !== undefined && !isRecord(meta)) return { ok: false, message: '"meta" must be an object' };
  return {
    ok: true,
    value: {
      id,
      image,
      question: human.value.replace(IMAGE_PLACEHOLDER, '').trim(),
      response: gpt.value,
      answer: String(answer),
      ...(choices !== undefined ? { choices } : {}),
      ...(meta !== undefined ? { meta } : {}),
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a JSONL dataset. Every bad line is reported at once in a DatasetError (`file:line:
 * message`): bad JSON, missing fields, no `<image>` placeholder, duplicate ids, missing or
 * undecodable image files. Blank lines are skipped.
 */
export async function loadDataset(jsonlPath: string, options: LoadDatasetOptions = {}): Promise<DatasetRecord[]> {
  const imageRoot = resolve(options.imageRoot ?? dirname(jsonlPath));
  const decoder = options.decoder ?? defaultImageDecoder;
  const loadImages = options.loadImages ?? true;
  const issues: DatasetIssue[] = [];
  const records: DatasetRecord[] = [];
  const ids = new Map<string, number>();
  const fail = (line: number, message: string): void => {
    issues.push({ file: jsonlPath, line, message });
  };

  let lineNumber = 0;
  const input = createReadStream(jsonlPath, { encoding: 'utf8' });
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      lineNumber++;
      if (text.trim().length === 0) continue;
      const parsed = parseLine(text);
      if (!parsed.ok) {
        fail(lineNumber, parsed.message);
        continue;
      }
      const { image, ...rest } = parsed.value;
      const firstLine = ids.get(rest.id);
      if (firstLine !== undefined) {
        fail(lineNumber, `duplicate id "${rest.id}" (first on line ${firstLine})`);
        continue;
      }
      ids.set(rest.id, lineNumber);
      const imagePath = resolve(imageRoot, image);
      if (!(await exists(imagePath))) {
        fail(lineNumber, `image file ${image} not found (looked for ${imagePath})`);
        continue;
      }
      let pixels: RgbImage | undefined;
      if (loadImages) {
        try {
          pixels = await decoder(await readFile(imagePath), imagePath);
        } catch (cause) {
          fail(lineNumber, cause instanceof Error ? cause.message : String(cause));
          continue;
        }
      }
      records.push({ ...rest, line: lineNumber, imagePath, ...(pixels !== undefined ? { image: pixels } : {}) });
    }
  } catch (cause) {
    throw new DatasetError([{ file: jsonlPath, line: lineNumber, message: `cannot read the file (${cause instanceof Error ? cause.message : String(cause)})` }], { cause });
  }
  if (issues.length > 0) throw new DatasetError(issues);
  return records;
}

const COLOUR_NAMES = new Set<string>(COLOURS);
const SHAPE_NAMES = new Set<string>(SHAPES);

function parseObject(value: unknown): WorldObject | null {
  if (!isRecord(value)) return null;
  const { kind, row, col, colour } = value;
  if (typeof row !== 'number' || typeof col !== 'number' || typeof colour !== 'string' || !COLOUR_NAMES.has(colour)) return null;
  const base = { row, col, colour: colour as Colour };
  if (kind === 'shape' && typeof value.shape === 'string' && SHAPE_NAMES.has(value.shape)) {
    return { kind, ...base, shape: value.shape as Shape };
  }
  if (kind === 'digit' && typeof value.digit === 'number' && Number.isInteger(value.digit)) return { kind, ...base, digit: value.digit };
  return null;
}

/**
 * The checker's view of a loaded record of this world (its meta.scene is the image's ground
 * truth). Records from other datasets have no scene: that is an error naming the line.
 */
export function checkableFromRecord(record: DatasetRecord): CheckableProblem {
  const scene = record.meta?.scene;
  const objects = isRecord(scene) && Array.isArray(scene.objects) ? scene.objects.map(parseObject) : null;
  if (objects === null || objects.some((o) => o === null)) {
    throw new DatasetError([{ file: record.imagePath, line: record.line, message: `record "${record.id}" has no valid meta.scene to check steps against` }]);
  }
  return {
    scene: { objects: objects as WorldObject[] },
    question: record.question,
    answer: record.answer,
    ...(record.choices !== undefined ? { choices: record.choices } : {}),
  };
}
