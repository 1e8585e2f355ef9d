export { CotFormatError } from './errors.js';
export { ANSWER_MARKER, STEP_SEPARATOR, extractAnswer, formatCot, splitSteps, withAnswerHint } from './format.js';
export { answersMatch, normalizeAnswer } from './answer.js';
export type { AnswerOptions } from './answer.js';
