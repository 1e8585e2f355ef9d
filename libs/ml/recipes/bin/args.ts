/** Command-line pieces the recipe bins share. */
import { ANSWER_STYLES, isAnswerStyle, type AnswerStyle } from '@mstar/world';

/** The `--answer-style` option of a bin's `parseArgs` (the run's `world.answer_style`). */
export const ANSWER_STYLE_OPTION = { 'answer-style': { type: 'string', default: 'short' } } as const;

/** The `--answer-style` value, or an error that lists the styles. */
export function answerStyleArg(value: string): AnswerStyle {
  if (!isAnswerStyle(value)) throw new Error(`--answer-style must be one of ${ANSWER_STYLES.join(', ')}, got ${value}`);
  return value;
}
