/** Command-line pieces the recipe bins share. */
import { ANSWER_STYLES, isAnswerStyle, type AnswerStyle } from '@mstar/world';

/** The `--answer-style` option of a bin's `parseArgs` (the run's `world.answer_style`). */
export const ANSWER_STYLE_OPTION = { 'answer-style': { type: 'string', default: 'short' } } as const;

/** The `--answer-style` value, or an error that lists the styles. */
export function answerStyleArg(value: string): AnswerStyle {
  if (!isAnswerStyle(value)) throw new Error(`--answer-style must be one of ${ANSWER_STYLES.join(', ')}, got ${value}`);
  return value;
}

export interface NumberArgOptions {
  /** Whole numbers only, written as digits (no `1e3`, `0x10` or `2.0`), within Number's safe range. */
  integer?: boolean;
  /** The smallest value allowed. */
  min?: number;
}

/**
 * `--name`'s value as a number, or an error that names the option and what it takes. `Number('')`
 * is 0, so without this an empty value (`--k=`, an unset shell variable) would quietly read as 0.
 */
export function numberArg(name: string, value: string, options: NumberArgOptions = {}): number {
  const text = value.trim();
  const n = options.integer ? (/^-?\d+$/.test(text) ? Number(text) : NaN) : text === '' ? NaN : Number(text);
  const valid = options.integer ? Number.isSafeInteger(n) : Number.isFinite(n);
  if (!valid || (options.min !== undefined && n < options.min)) {
    throw new Error(`--${name} must be ${options.integer ? 'an integer' : 'a number'}${options.min === undefined ? '' : ` >= ${options.min}`}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** `--name`'s comma-separated values (`1,2,3`), each read as `numberArg` reads one; the error quotes the whole list. */
export function numberListArg(name: string, value: string, options: NumberArgOptions = {}): number[] {
  try {
    return value.split(',').map((part) => numberArg(name, part, options));
  } catch {
    throw new Error(`--${name} takes comma-separated ${options.integer ? 'integers' : 'numbers'}${options.min === undefined ? '' : ` >= ${options.min}`}, got ${JSON.stringify(value)}`);
  }
}
