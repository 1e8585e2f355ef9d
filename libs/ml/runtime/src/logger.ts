/** The slice of a structured logger (pino-compatible: fields first, constant message second) this library needs. */
export interface Logger {
  info: (fields: Record<string, unknown>, message: string) => void;
  warn: (fields: Record<string, unknown>, message: string) => void;
}

/** Default when no logger is injected: JSON lines on stderr, so an execution-provider fallback is never silent. */
export const stderrLogger: Logger = {
  info: (fields, message) => process.stderr.write(`${JSON.stringify({ level: 'info', msg: message, ...fields })}\n`),
  warn: (fields, message) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: message, ...fields })}\n`),
};
