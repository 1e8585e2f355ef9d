import { createHash } from 'node:crypto';
import { formatCot } from '@mstar/cot';
import { createRng, deriveSeed } from '@mstar/metrics';
import { draftProblem } from './families.js';
import type { FamilyName } from './families.js';
import type { StyleName } from './render.js';
import type { Scene } from './scene.js';

/** One benchmark problem: an image (as its scene), a question, the gold reasoning and answer. */
export interface Problem {
  /** `<split>-<index>`, also the image file's name. */
  readonly id: string;
  readonly split: string;
  readonly index: number;
  readonly family: FamilyName;
  /** The number of gold reasoning steps. */
  readonly difficulty: number;
  readonly style: StyleName;
  readonly scene: Scene;
  readonly question: string;
  readonly steps: readonly string[];
  /** The gold chain of thought in the method's format (steps, `# Answer`, answer). */
  readonly cot: string;
  readonly answer: string;
  /** Answer options for choice questions (compare families), in letter order. */
  readonly choices?: readonly string[];
  /** The seed that regenerates this problem with generateProblem. */
  readonly seed: number;
  /** sha256 of the style, scene and question: equal content, equal hash. */
  readonly hash: string;
}

/** Content hash of a problem: what the model sees (style, objects, question), nothing else. */
export function problemHash(style: StyleName, scene: Scene, question: string): string {
  return createHash('sha256').update(JSON.stringify({ style, objects: scene.objects, question })).digest('hex');
}

export interface GenerateProblemOptions {
  readonly family: FamilyName;
  readonly style: StyleName;
  readonly seed: number;
  readonly split?: string;
  readonly index?: number;
}

/** Generates one problem, a pure function of its options. */
export function generateProblem(options: GenerateProblemOptions): Problem {
  const { family, style, seed, split = 'adhoc', index = 0 } = options;
  const draft = draftProblem(family, createRng(deriveSeed(seed, 'problem', family)));
  return {
    id: `${split}-${String(index).padStart(5, '0')}`,
    split,
    index,
    family,
    difficulty: draft.steps.length,
    style,
    scene: draft.scene,
    question: draft.question,
    steps: draft.steps,
    cot: formatCot(draft.steps, draft.answer),
    answer: draft.answer,
    ...(draft.choices !== undefined ? { choices: draft.choices } : {}),
    seed,
    hash: problemHash(style, draft.scene, draft.question),
  };
}
