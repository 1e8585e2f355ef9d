import { InvalidSubjectError } from './errors.js';

const TOKEN = /^[^\s.*>]+$/;
const DURABLE = /^[A-Za-z0-9_-]+$/;

/** A concrete subject to publish to: dot-separated non-empty tokens, no wildcards, no whitespace. */
export function assertPublishSubject(subject: string): void {
  if (!subject.split('.').every((t) => TOKEN.test(t))) {
    throw new InvalidSubjectError(
      `invalid subject '${subject}': expected dot-separated non-empty tokens without whitespace or wildcards`,
      { field: 'subject' },
    );
  }
}

/** A filter: like a subject, but `*` may stand for one token and `>` (last token only) for the rest. */
export function assertFilterSubject(filter: string): void {
  const tokens = filter.split('.');
  const ok = tokens.every((t, i) => TOKEN.test(t) || t === '*' || (t === '>' && i === tokens.length - 1));
  if (!ok) {
    throw new InvalidSubjectError(
      `invalid subject filter '${filter}': expected dot-separated tokens, '*' for one token, '>' only as the last token`,
      { field: 'subjects' },
    );
  }
}

export function assertDurableName(durable: string): void {
  if (!DURABLE.test(durable)) {
    throw new InvalidSubjectError(`invalid durable name '${durable}': use letters, digits, '_' and '-' only`, {
      field: 'durable',
    });
  }
}

/**
 * True when every subject matched by `pattern` is also matched by `filter` (a concrete subject is
 * a pattern that matches only itself), so `covers(f, s)` is also plain subject matching.
 */
export function covers(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < f.length; i++) {
    const ft = f[i];
    const pt = p[i];
    if (ft === '>') return pt !== undefined;
    if (pt === undefined || pt === '>') return false;
    if (ft === '*') continue;
    if (ft !== pt) return false;
  }
  return f.length === p.length;
}

export function normalizeFilters(subjects: string | readonly string[]): string[] {
  const list = typeof subjects === 'string' ? [subjects] : [...subjects];
  if (list.length === 0) throw new InvalidSubjectError('a consumer needs at least one subject filter', { field: 'subjects' });
  list.forEach(assertFilterSubject);
  return list;
}

/** Whether two filter lists select the same subjects as written (order and repeats aside). */
export function sameFilters(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((f) => y.has(f));
}

/**
 * Publishing to a subject no stream stores would silently lose the event (or, on JetStream, look
 * exactly like an outage), so both buses refuse it up front.
 */
export function assertCaptured(subject: string, storedSubjects: readonly string[]): void {
  assertPublishSubject(subject);
  if (!storedSubjects.some((s) => covers(s, subject))) {
    throw new InvalidSubjectError(
      `subject '${subject}' is not stored by this bus (stored subjects: ${storedSubjects.join(', ')})`,
      { field: 'subject' },
    );
  }
}
