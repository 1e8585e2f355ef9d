import type { FamilyName } from './families.js';
import type { Problem } from './problem.js';
import type { TextTokenizer } from './tokenizer.js';

export interface FamilyStats {
  readonly family: FamilyName;
  readonly problems: number;
  readonly meanSteps: number;
  readonly maxSteps: number;
  readonly meanQuestionTokens: number;
  readonly maxQuestionTokens: number;
  readonly meanCotTokens: number;
  readonly maxCotTokens: number;
  readonly distinctQuestions: number;
  readonly distinctAnswers: number;
  /**
   * Accuracy of an image-blind guesser that answers each question with its most frequent gold
   * answer in the reference problems (unseen question: the family's most frequent answer). Near
   * chance means the image is needed. Fit on the same problems it is scored on, it is optimistic
   * for small sets: pass the training split as reference to score a test split.
   */
  readonly blindAccuracy: number;
}

export interface SummarizeOptions {
  /** The problems the blind guesser learns from; defaults to the problems summarised. */
  readonly reference?: readonly Problem[];
}

function mostFrequent(counts: ReadonlyMap<string, number>): string | undefined {
  let best: [string, number] | undefined;
  for (const entry of counts) if (best === undefined || entry[1] > best[1]) best = entry;
  return best?.[0];
}

function tally<K>(map: Map<K, Map<string, number>>, key: K, answer: string): void {
  const counts = map.get(key) ?? new Map<string, number>();
  counts.set(answer, (counts.get(answer) ?? 0) + 1);
  map.set(key, counts);
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const max = (xs: readonly number[]): number => xs.reduce((a, b) => Math.max(a, b), 0);

/** Per-family sizes, token lengths (question with its `<image>` line, gold CoT) and a blind baseline. */
export function summarizeProblems(problems: readonly Problem[], tokenizer: TextTokenizer, options: SummarizeOptions = {}): FamilyStats[] {
  const byQuestion = new Map<string, Map<string, number>>();
  const byFamilyAnswers = new Map<FamilyName, Map<string, number>>();
  for (const p of options.reference ?? problems) {
    tally(byQuestion, p.question, p.answer);
    tally(byFamilyAnswers, p.family, p.answer);
  }
  const blindGuess = (p: Problem): string | undefined =>
    mostFrequent(byQuestion.get(p.question) ?? byFamilyAnswers.get(p.family) ?? new Map<string, number>());

  const byFamily = new Map<FamilyName, Problem[]>();
  for (const p of problems) byFamily.set(p.family, [...(byFamily.get(p.family) ?? []), p]);
  return [...byFamily].map(([family, group]) => {
    const questionTokens = group.map((p) => tokenizer.encode(`<image>\n${p.question}`).length);
    const cotTokens = group.map((p) => tokenizer.encode(p.cot).length);
    const blindHits = group.filter((p) => blindGuess(p) === p.answer).length;
    return {
      family,
      problems: group.length,
      meanSteps: mean(group.map((p) => p.difficulty)),
      maxSteps: max(group.map((p) => p.difficulty)),
      meanQuestionTokens: mean(questionTokens),
      maxQuestionTokens: max(questionTokens),
      meanCotTokens: mean(cotTokens),
      maxCotTokens: max(cotTokens),
      distinctQuestions: new Set(group.map((p) => p.question)).size,
      distinctAnswers: new Set(group.map((p) => p.answer)).size,
      blindAccuracy: blindHits / group.length,
    };
  });
}
