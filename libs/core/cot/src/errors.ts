/** Raised when a chain of thought cannot be built in the method's format. */
export class CotFormatError extends Error {
  override readonly name = 'CotFormatError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
