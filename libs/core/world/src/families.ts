import type { Rng } from '@mstar/metrics';
import { WorldError } from './errors.js';
import { COLOURS, DIGITS, GRID, SHAPES, countSubject, matchesSubject, readingOrder, subjectPhrase } from './scene.js';
import type { Colour, ObjectAttributes, Scene, Shape, Subject, WorldObject } from './scene.js';
import { arithmeticStep, countStep, listStep, relationStep } from './steps.js';
import type { Operator } from './steps.js';

/** Families seen in training, validation and the in-domain test. */
export const IN_DOMAIN_FAMILIES = ['count', 'count-both', 'compare', 'difference', 'total-times', 'digit-sum'] as const;
/** Longer compositions that only the out-of-domain compose split asks. */
export const COMPOSE_FAMILIES = ['compare-both', 'difference-both', 'total-both', 'digit-sum-long'] as const;
export const FAMILIES = [...IN_DOMAIN_FAMILIES, ...COMPOSE_FAMILIES] as const;
export type FamilyName = (typeof FAMILIES)[number];

/** A generated problem before it is given an id: the scene and its gold reasoning. */
export interface Draft {
  readonly family: FamilyName;
  readonly scene: Scene;
  readonly question: string;
  readonly steps: readonly string[];
  readonly answer: string;
  readonly choices?: readonly string[];
}

const CELLS = GRID * GRID;
/**
 * The world's difficulty knobs (calibrated so that the warm-up policy lands at 25-55% greedy, see
 * @mstar/recipes): the largest count a question is planned around, and the largest count that a
 * sum adds (sums stay at most 6). Scenes hold few distractors besides (in-domain at most 11 objects).
 */
const MAX_COUNT = 4;
const MAX_ADDEND = 3;
// Every possible object, position aside; distractors are drawn from filtered copies of these.
const SHAPE_PROTOS: readonly ObjectAttributes[] = COLOURS.flatMap((colour) => SHAPES.map((shape): ObjectAttributes => ({ kind: 'shape', colour, shape })));
const DIGIT_PROTOS: readonly ObjectAttributes[] = COLOURS.flatMap((colour) => DIGITS.map((digit): ObjectAttributes => ({ kind: 'digit', colour, digit })));

/** Collects objects, then places them in distinct random cells. Required objects always fit. */
class SceneBuilder {
  private readonly protos: ObjectAttributes[] = [];

  constructor(private readonly rng: Rng) {}

  /** n objects drawn by `make`; `optional` ones are dropped when the board is full. */
  add(n: number, make: () => ObjectAttributes, optional = false): this {
    for (let i = 0; i < n; i++) {
      if (this.protos.length >= CELLS) {
        if (optional) return this;
        throw new WorldError(`a scene needs more than ${CELLS} objects: the family's counts are too large for the grid`);
      }
      this.protos.push(make());
    }
    return this;
  }

  /** Up to n distractor shapes (or digits) drawn uniformly among those satisfying `where`, as many as fit. */
  shapes(n: number, where: (p: ObjectAttributes) => boolean = () => true): this {
    return this.distractors(n, SHAPE_PROTOS, where);
  }

  digits(n: number, where: (p: ObjectAttributes) => boolean = () => true): this {
    return this.distractors(n, DIGIT_PROTOS, where);
  }

  build(): Scene {
    const cells = this.rng.sample(
      Array.from({ length: CELLS }, (_, i) => i),
      this.protos.length,
    );
    const objects = this.protos.map((p, i): WorldObject => {
      const cell = cells[i] ?? 0;
      return { ...p, row: Math.floor(cell / GRID), col: cell % GRID };
    });
    return { objects: readingOrder(objects) };
  }

  private distractors(n: number, pool: readonly ObjectAttributes[], where: (p: ObjectAttributes) => boolean): this {
    if (n === 0) return this;
    const allowed = pool.filter(where);
    if (allowed.length === 0) throw new WorldError('no object satisfies the distractor constraint');
    return this.add(n, () => this.rng.pick(allowed), true);
  }
}

const not =
  (...subjects: Subject[]) =>
  (p: ObjectAttributes): boolean =>
    subjects.every((s) => !matchesSubject(p, s));

/** A proto that matches the subject, with its free attributes drawn at random. */
function member(rng: Rng, subject: Subject): ObjectAttributes {
  const colour = subject.colour ?? rng.pick(COLOURS);
  return subject.kind === 'digit'
    ? { kind: 'digit', colour, digit: rng.pick(DIGITS) }
    : { kind: 'shape', colour, shape: subject.shape ?? rng.pick(SHAPES) };
}

/** Two disjoint single-attribute shape subjects: two colours, or two shape types. */
function subjectPair(rng: Rng): [Subject, Subject] {
  if (rng.int(2) === 0) {
    const [a, b] = rng.sample(COLOURS, 2) as [Colour, Colour];
    return [
      { kind: 'shape', colour: a },
      { kind: 'shape', colour: b },
    ];
  }
  const [a, b] = rng.sample(SHAPES, 2) as [Shape, Shape];
  return [
    { kind: 'shape', shape: a },
    { kind: 'shape', shape: b },
  ];
}

/** Two colour+shape subjects with different colours (shapes may coincide). */
function bothPair(rng: Rng): [Subject, Subject] {
  const [ca, cb] = rng.sample(COLOURS, 2) as [Colour, Colour];
  return [
    { kind: 'shape', colour: ca, shape: rng.pick(SHAPES) },
    { kind: 'shape', colour: cb, shape: rng.pick(SHAPES) },
  ];
}

/** Counts (a, b) up to MAX_COUNT with the outcome a>b, a<b, a=b equally likely. */
function comparedCounts(rng: Rng): [number, number] {
  const base = rng.range(0, MAX_COUNT - 2);
  const delta = rng.range(1, 2);
  const outcome = rng.int(3);
  return outcome === 0 ? [base + delta, base] : outcome === 1 ? [base, base + delta] : [base, base];
}

/** Counts (a, b) with a - b uniform over 0..MAX_COUNT-1 and a at most MAX_COUNT. */
function differenceCounts(rng: Rng): [number, number] {
  const d = rng.range(0, MAX_COUNT - 1);
  const b = rng.range(0, MAX_COUNT - d);
  return [b + d, b];
}

const colourOf = (s: Subject): Subject => ({ kind: 'shape', ...(s.colour !== undefined ? { colour: s.colour } : {}) });

function compareAnswer(a: number, b: number, A: Subject, B: Subject): { answer: string; choices: string[] } {
  const choices = [subjectPhrase(A), subjectPhrase(B), 'equal'];
  return { answer: (a > b ? choices[0] : a < b ? choices[1] : choices[2]) as string, choices };
}

function count(rng: Rng): Draft {
  const b = new SceneBuilder(rng);
  const type = rng.int(3);
  let subject: Subject;
  if (type === 2) {
    subject = { kind: 'digit', colour: rng.pick(COLOURS) };
    b.add(rng.range(0, MAX_COUNT), () => member(rng, subject)).digits(rng.range(0, 1), not(subject)).shapes(rng.range(1, 3));
  } else {
    subject = type === 0 ? { kind: 'shape', colour: rng.pick(COLOURS) } : { kind: 'shape', shape: rng.pick(SHAPES) };
    b.add(rng.range(0, MAX_COUNT), () => member(rng, subject)).shapes(rng.range(1, 3), not(subject)).digits(rng.range(0, 1));
  }
  const scene = b.build();
  const n = countSubject(scene, subject);
  return { family: 'count', scene, question: `how many ${subjectPhrase(subject)} are there?`, steps: [countStep(subject, n)], answer: String(n) };
}

function countBoth(rng: Rng): Draft {
  const colour = rng.pick(COLOURS);
  const shape = rng.pick(SHAPES);
  const target: Subject = { kind: 'shape', colour, shape };
  const ofColour: Subject = { kind: 'shape', colour };
  const ofShape: Subject = { kind: 'shape', shape };
  const scene = new SceneBuilder(rng)
    .add(rng.range(0, 3), () => member(rng, target))
    .shapes(rng.range(0, 2), (p) => p.colour === colour && !matchesSubject(p, target))
    .shapes(rng.range(0, 2), (p) => p.colour !== colour && matchesSubject(p, ofShape))
    .shapes(rng.range(0, 2), not(ofColour, ofShape))
    .digits(rng.range(0, 1))
    .build();
  const n = countSubject(scene, target);
  return {
    family: 'count-both',
    scene,
    question: `how many ${subjectPhrase(target)} are there?`,
    steps: [countStep(ofColour, countSubject(scene, ofColour)), countStep(target, n)],
    answer: String(n),
  };
}

/** A scene with a objects of A, b of B, distractors matching neither, a few digits. */
function pairScene(rng: Rng, A: Subject, B: Subject, a: number, b: number): Scene {
  return new SceneBuilder(rng)
    .add(a, () => member(rng, A))
    .add(b, () => member(rng, B))
    .shapes(rng.range(1, 2), not(A, B))
    .digits(rng.range(0, 1))
    .build();
}

function compare(rng: Rng): Draft {
  const [A, B] = subjectPair(rng);
  const [a0, b0] = comparedCounts(rng);
  const scene = pairScene(rng, A, B, a0, b0);
  const a = countSubject(scene, A);
  const b = countSubject(scene, B);
  return {
    family: 'compare',
    scene,
    question: `are there more ${subjectPhrase(A)} or more ${subjectPhrase(B)}?`,
    steps: [countStep(A, a), countStep(B, b), relationStep(a, b)],
    ...compareAnswer(a, b, A, B),
  };
}

function difference(rng: Rng): Draft {
  const [A, B] = subjectPair(rng);
  const [a0, b0] = differenceCounts(rng);
  const scene = pairScene(rng, A, B, a0, b0);
  const a = countSubject(scene, A);
  const b = countSubject(scene, B);
  return {
    family: 'difference',
    scene,
    question: `how many more ${subjectPhrase(A)} than ${subjectPhrase(B)} are there?`,
    steps: [countStep(A, a), countStep(B, b), arithmeticStep(a, '-', b)],
    answer: String(a - b),
  };
}

function totalTimes(rng: Rng): Draft {
  const [A, B] = subjectPair(rng);
  const factor = rng.range(2, 3);
  const scene = pairScene(rng, A, B, rng.range(0, MAX_ADDEND), rng.range(0, MAX_ADDEND));
  const a = countSubject(scene, A);
  const b = countSubject(scene, B);
  return {
    family: 'total-times',
    scene,
    question: `what is the number of ${subjectPhrase(A)} plus the number of ${subjectPhrase(B)}, times ${factor}?`,
    steps: [countStep(A, a), countStep(B, b), arithmeticStep(a, '+', b), arithmeticStep(a + b, '*', factor)],
    answer: String((a + b) * factor),
  };
}

function digitSum(rng: Rng, family: 'digit-sum' | 'digit-sum-long', k: number): Draft {
  const colour = rng.pick(COLOURS);
  const subject: Subject = { kind: 'digit', colour };
  const scene = new SceneBuilder(rng)
    .add(k, () => member(rng, subject))
    .digits(rng.range(0, 1), not(subject))
    .shapes(rng.range(1, 3))
    .build();
  const values = scene.objects.filter((o) => matchesSubject(o, subject)).map((o) => (o.kind === 'digit' ? o.digit : 0));
  const steps = [listStep(colour, values)];
  let total = values[0] ?? 0;
  for (const v of values.slice(1)) {
    steps.push(arithmeticStep(total, '+', v));
    total += v;
  }
  return { family, scene, question: `what is the sum of the ${colour} digits?`, steps, answer: String(total) };
}

/** Scene and the four count steps shared by the colour+shape pair families. */
function bothPairScene(rng: Rng, A: Subject, B: Subject, a: number, b: number): { scene: Scene; steps: string[]; a: number; b: number } {
  const cA = colourOf(A);
  const cB = colourOf(B);
  const scene = new SceneBuilder(rng)
    .add(a, () => member(rng, A))
    .add(b, () => member(rng, B))
    .shapes(rng.range(0, 1), (p) => p.colour === A.colour && !matchesSubject(p, A))
    .shapes(rng.range(0, 1), (p) => p.colour === B.colour && !matchesSubject(p, B))
    .shapes(rng.range(1, 2), not(cA, cB))
    .digits(rng.range(0, 1))
    .build();
  const na = countSubject(scene, A);
  const nb = countSubject(scene, B);
  return {
    scene,
    a: na,
    b: nb,
    steps: [countStep(cA, countSubject(scene, cA)), countStep(A, na), countStep(cB, countSubject(scene, cB)), countStep(B, nb)],
  };
}

function compareBoth(rng: Rng): Draft {
  const [A, B] = bothPair(rng);
  const [a0, b0] = comparedCounts(rng);
  const { scene, steps, a, b } = bothPairScene(rng, A, B, a0, b0);
  return {
    family: 'compare-both',
    scene,
    question: `are there more ${subjectPhrase(A)} or more ${subjectPhrase(B)}?`,
    steps: [...steps, relationStep(a, b)],
    ...compareAnswer(a, b, A, B),
  };
}

function pairArithmetic(rng: Rng, family: 'difference-both' | 'total-both', op: Operator): Draft {
  const [A, B] = bothPair(rng);
  const [a0, b0] = op === '-' ? differenceCounts(rng) : [rng.range(0, MAX_ADDEND), rng.range(0, MAX_ADDEND)];
  const { scene, steps, a, b } = bothPairScene(rng, A, B, a0, b0);
  const question =
    op === '-'
      ? `how many more ${subjectPhrase(A)} than ${subjectPhrase(B)} are there?`
      : `how many ${subjectPhrase(A)} and ${subjectPhrase(B)} are there in total?`;
  return { family, scene, question, steps: [...steps, arithmeticStep(a, op, b)], answer: String(op === '-' ? a - b : a + b) };
}

const GENERATORS: Readonly<Record<FamilyName, (rng: Rng) => Draft>> = {
  count,
  'count-both': countBoth,
  compare,
  difference,
  'total-times': totalTimes,
  'digit-sum': (rng) => digitSum(rng, 'digit-sum', rng.range(2, 3)),
  'compare-both': compareBoth,
  'difference-both': (rng) => pairArithmetic(rng, 'difference-both', '-'),
  'total-both': (rng) => pairArithmetic(rng, 'total-both', '+'),
  'digit-sum-long': (rng) => digitSum(rng, 'digit-sum-long', 4),
};

/** Draws one problem of a family from the generator's random stream. */
export function draftProblem(family: FamilyName, rng: Rng): Draft {
  return GENERATORS[family](rng);
}
