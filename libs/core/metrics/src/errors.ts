/** Raised when a metric or selection rule is called with arguments it cannot give a meaning to. */
export class MetricsError extends Error {
  override readonly name = 'MetricsError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
