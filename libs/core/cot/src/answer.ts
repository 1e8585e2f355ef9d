/** Options for answer normalisation and matching. */
export interface AnswerOptions {
  /** Multiple-choice options in letter order: choices[0] is (A). */
  readonly choices?: readonly string[];
}

// Plain decimals with optional sign, optional thousands separators ("1,000") and optional fraction.
const NUMBER = /^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^[+-]?\.\d+$/;
// "B", "(B)", "B)", "B.", "B:" optionally followed by the option's text.
const CHOICE = /^\(?([a-z])\)?(?:[.:)]|\s|$)\s*(.*)$/;

function basic(text: string): string {
  return text
    .normalize('NFKC')
    .trim()
    .toLocaleLowerCase('en-US')
    .replace(/\s+/g, ' ')
    .replace(/\.$/, '')
    .trim();
}

function canonicalNumber(text: string): string | null {
  if (!NUMBER.test(text)) return null;
  const value = Number(text.replace(/,/g, ''));
  // Object.is guards "-0": String(-0) is "0" already, but we keep the intent explicit.
  return Number.isFinite(value) ? String(Object.is(value, -0) ? 0 : value) : null;
}

function canonical(text: string): string {
  const b = basic(text);
  return canonicalNumber(b) ?? b;
}

/**
 * The canonical form of an answer: NFKC, trimmed, case-folded, inner whitespace collapsed, one
 * trailing period dropped; a number becomes its shortest decimal form ("3.0" -> "3",
 * "1,000" -> "1000"); with `choices`, a letter ("B", "(B)", "B.", "(B) text of B") becomes the
 * canonical text of that option. A letter followed by text that is NOT its option is left as is:
 * the response contradicts itself and must not match either reading.
 */
export function normalizeAnswer(answer: string, options: AnswerOptions = {}): string {
  const text = canonical(answer);
  const choices = options.choices;
  if (choices !== undefined && choices.length > 0) {
    const match = CHOICE.exec(text);
    if (match !== null) {
      const letter = match[1] ?? '';
      const rest = match[2] ?? '';
      const index = letter.charCodeAt(0) - 'a'.charCodeAt(0);
      const option = choices[index];
      if (option !== undefined) {
        const optionText = canonical(option);
        if (rest.length === 0 || canonical(rest) === optionText) return optionText;
      }
    }
  }
  return text;
}

/** True when the predicted answer (null = none extracted) equals the gold answer after normalisation. */
export function answersMatch(predicted: string | null, gold: string, options: AnswerOptions = {}): boolean {
  if (predicted === null) return false;
  const p = normalizeAnswer(predicted, options);
  return p.length > 0 && p === normalizeAnswer(gold, options);
}
