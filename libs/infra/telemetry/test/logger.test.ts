import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel } from '../src/index.js';

function capture(): { lines: Record<string, unknown>[]; destination: { write(line: string): void } } {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('createLogger', () => {
  it('writes one JSON object per line with the service bound and data in fields', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'prm-scoring', destination });
    logger.info({ version: 3, ms: 12.5 }, 'checkpoint loaded');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({ service: 'prm-scoring', level: 'info', msg: 'checkpoint loaded', version: 3, ms: 12.5 });
    expect(line.pid).toBe(process.pid);
    expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
  });

  it('keeps the service on child loggers and serializes errors with their stack and cause', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'trainer', destination }).child({ runId: 'r1' });
    logger.error({ err: new Error('disk full', { cause: new Error('ENOSPC') }) }, 'checkpoint write failed');
    const line = lines[0]!;
    expect(line).toMatchObject({ service: 'trainer', runId: 'r1', level: 'error', msg: 'checkpoint write failed' });
    const err = line.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.message).toContain('disk full');
    expect(err.stack).toContain('logger.test.ts');
  });

  it('drops lines below the level', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'x', level: 'warn', destination });
    logger.info('ignored');
    logger.debug('ignored');
    logger.warn('kept');
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
    createLogger({ service: 'x', level: 'silent', destination }).fatal('never');
    expect(lines).toHaveLength(1);
  });

  it('recognises level names', () => {
    expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].every(isLogLevel)).toBe(true);
    expect(isLogLevel('verbose')).toBe(false);
  });
});
