import { describe, expect, it } from 'vitest';
import { createWorldTokenizer, generateProblem, summarizeProblems } from '../src/index.js';
import type { Problem } from '../src/index.js';

const tokenizer = createWorldTokenizer();
const base = generateProblem({ family: 'count', style: 'plain', seed: 1 });
const variant = (question: string, answer: string, cot: string): Problem => ({ ...base, question, answer, cot });

describe('summarizeProblems', () => {
  const problems = [
    variant('how many red shapes are there?', '2', 'the number of red shapes is 2.\n\n# Answer\n\n2'),
    variant('how many red shapes are there?', '2', 'the number of red shapes is 2.\n\n# Answer\n\n2'),
    variant('how many red shapes are there?', '3', 'the number of red shapes is 3.\n\n# Answer\n\n3'),
    variant('how many circles are there?', '1', 'the number of circles is 1.\n\n# Answer\n\n1'),
  ];

  it('measures token lengths, distinct questions and answers', () => {
    const [stats] = summarizeProblems(problems, tokenizer);
    expect(stats).toMatchObject({
      family: 'count',
      problems: 4,
      meanSteps: 1,
      maxSteps: 1,
      // "<image>", "\n", "how", " many", " red", " shapes", " are", " there", "?"
      maxQuestionTokens: 9,
      meanQuestionTokens: 8.75,
      // 7 tokens of step, then "\n\n", "#", " Answer", "\n\n", answer
      maxCotTokens: 13,
      meanCotTokens: 12.75,
      distinctQuestions: 2,
      distinctAnswers: 3,
    });
    // In-sample blind guesser: "2" for red shapes (2 of 3), "1" for circles (1 of 1).
    expect(stats?.blindAccuracy).toBe(0.75);
  });

  it('scores the blind guesser against a reference set', () => {
    const reference = [problems[2]!, problems[3]!, problems[3]!];
    // Red shapes -> "3" (1 of 3 right), circles -> "1" (1 of 1 right).
    expect(summarizeProblems(problems, tokenizer, { reference })[0]?.blindAccuracy).toBe(0.5);
  });
});
