import type { Logger } from '@mstar/runtime';

export interface LogRecord {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps what it is told, for assertions. */
export function recordingLogger(): Logger & { records: LogRecord[]; at(level: 'info' | 'warn'): LogRecord[] } {
  const records: LogRecord[] = [];
  return {
    records,
    info: (fields, message) => void records.push({ level: 'info', fields, message }),
    warn: (fields, message) => void records.push({ level: 'warn', fields, message }),
    at: (level) => records.filter((r) => r.level === level),
  };
}
