import { hostname } from 'node:os';
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = Level | 'silent';

export interface CreateLoggerOptions {
  /** Bound into every line as `service`, so aggregated logs say who wrote them. */
  service: string;
  level?: LogLevel;
  /** Where JSON lines go; stdout when omitted. Tests pass an in-memory stream. */
  destination?: DestinationStream;
}

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function isLogLevel(value: string): value is LogLevel {
  return (LEVELS as readonly string[]).includes(value);
}

/**
 * A JSON logger with the service name bound. Write constant messages and put the data in fields:
 * `logger.info({ version, ms }, 'checkpoint loaded')`, so lines can be grouped by message.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service, pid: process.pid, hostname: hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names instead of numbers keep the lines readable without pino-pretty.
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
