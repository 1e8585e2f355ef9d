import { CotFormatError } from './errors.js';

/** The marker that opens the final answer block (method section 5). */
export const ANSWER_MARKER = '# Answer';

/** The separator between steps, and between the last step, the marker and the answer. */
export const STEP_SEPARATOR = '\n\n';

// A blank line is a line holding only spaces or tabs; CRLF is folded to LF before splitting so that
// responses written on Windows split the same way.
const BLANK_LINE = /\n[ \t]*\n/;

function splitBlocks(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(BLANK_LINE)
    .map((block) => block.trim())
    .filter((block) => block.length > 0);
}

/**
 * The reasoning steps of a response: the blank-line separated blocks before the LAST `# Answer`,
 * trimmed, empty blocks dropped. A response with no `# Answer` (a truncated generation) is all
 * steps, so a PRM can still score what was written.
 */
export function splitSteps(response: string): string[] {
  const marker = response.lastIndexOf(ANSWER_MARKER);
  return splitBlocks(marker === -1 ? response : response.slice(0, marker));
}

/**
 * The final answer: the text after the LAST `# Answer`, trimmed (a `:` right after the marker is
 * tolerated). Null when there is no marker or nothing follows it.
 */
export function extractAnswer(response: string): string | null {
  const marker = response.lastIndexOf(ANSWER_MARKER);
  if (marker === -1) return null;
  const answer = response
    .slice(marker + ANSWER_MARKER.length)
    .replace(/^[ \t]*:/, '')
    .trim();
  return answer.length > 0 ? answer : null;
}

/**
 * Builds `step1\n\nstep2\n\n# Answer\n\nX`. Steps and answer are trimmed; a step that is empty,
 * contains a blank line or the answer marker would not survive `splitSteps`, so it is rejected.
 */
export function formatCot(steps: readonly string[], answer: string): string {
  const blocks = steps.map((raw, index) => {
    const step = raw.trim();
    if (step.length === 0) throw new CotFormatError(`step ${index + 1} is empty`);
    if (BLANK_LINE.test(step.replace(/\r\n?/g, '\n'))) {
      throw new CotFormatError(`step ${index + 1} contains a blank line: ${JSON.stringify(step)}`);
    }
    if (step.includes(ANSWER_MARKER)) {
      throw new CotFormatError(`step ${index + 1} contains the answer marker "${ANSWER_MARKER}"`);
    }
    return step;
  });
  const final = answer.trim();
  if (final.length === 0) throw new CotFormatError('the answer is empty');
  if (final.includes(ANSWER_MARKER)) {
    throw new CotFormatError(`the answer contains the answer marker "${ANSWER_MARKER}"`);
  }
  return [...blocks, ANSWER_MARKER, final].join(STEP_SEPARATOR);
}

/**
 * A question hinted with its gold answer, STaR's rationalization prompt: the question, then a line
 * `# Answer: ` and the answer, so that a policy trained on such prompts writes a chain towards it.
 */
export function withAnswerHint(question: string, answer: string): string {
  const hint = answer.trim();
  if (hint.length === 0) throw new CotFormatError('the hint answer is empty');
  return `${question}\n${ANSWER_MARKER}: ${hint}`;
}
