import { InvalidArgumentError } from '@mstar/errors';

/** Raised when the world is asked for something it does not define (unknown split, bad size...). */
export class WorldError extends InvalidArgumentError {}

/** One bad line of a dataset file. */
export interface DatasetIssue {
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  readonly message: string;
}

/** Raised by loadDataset with every bad line of the file, each named `file:line: message`. */
export class DatasetError extends WorldError {
  readonly issues: readonly DatasetIssue[];

  constructor(issues: readonly DatasetIssue[], options?: { cause?: unknown }) {
    const shown = issues.slice(0, 20).map((i) => `${i.file}:${i.line}: ${i.message}`);
    const more = issues.length > shown.length ? [`... and ${issues.length - shown.length} more`] : [];
    super(`dataset has ${issues.length} bad line(s):\n${[...shown, ...more].join('\n')}`, options);
    this.issues = issues;
  }
}

/** Raised when image bytes cannot be decoded, or no decoder handles the file type. */
export class ImageDecodeError extends WorldError {}

/** Raised when a tokenizer file is unusable or ids fall outside the vocabulary. */
export class TokenizerError extends WorldError {}
