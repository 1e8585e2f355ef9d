import { InvalidKeyError } from './errors.js';

/*
 * Key rules are checked before any I/O and are the same for every implementation of a store, so a
 * key that works in the single-process default also works against NATS.
 */

const RUN_KEY_TOKEN = /^[-/_=a-zA-Z0-9]+$/;

/**
 * Run-store keys follow NATS KV's rules: dot-separated tokens of letters, digits and `-/_=`.
 * The dots are what prefixes (`keys('runs')`, `watch({ prefix: 'runs' })`) select on.
 */
export function assertRunKey(key: string): void {
  if (key.length === 0) throw new InvalidKeyError(key, 'a key cannot be empty');
  const bad = key.split('.').find((t) => !RUN_KEY_TOKEN.test(t));
  if (bad !== undefined) {
    throw new InvalidKeyError(key, `token '${bad}' must be non-empty and use only letters, digits and '-', '/', '_', '='`);
  }
}

const ARTIFACT_SEGMENT = /^[A-Za-z0-9_\-+=@,][A-Za-z0-9_.\-+=@,]*$/;
const MAX_ARTIFACT_KEY_LENGTH = 1024;

/**
 * Artifact keys are relative `/`-separated paths. Segments may not start with a dot, which rules
 * out `.`, `..` (escaping the store) and hidden names (the filesystem store keeps temp files there).
 */
export function assertArtifactKey(key: string): void {
  if (key.length === 0) throw new InvalidKeyError(key, 'a key cannot be empty');
  if (key.length > MAX_ARTIFACT_KEY_LENGTH) throw new InvalidKeyError(key, `longer than ${MAX_ARTIFACT_KEY_LENGTH} characters`);
  if (key.startsWith('/')) throw new InvalidKeyError(key, 'absolute paths are not allowed; use a relative path');
  for (const segment of key.split('/')) {
    if (segment === '..' || segment === '.') throw new InvalidKeyError(key, `'${segment}' segments are not allowed`);
    if (!ARTIFACT_SEGMENT.test(segment)) {
      throw new InvalidKeyError(
        key,
        segment.length === 0
          ? 'empty path segment (leading, trailing or doubled /)'
          : `segment '${segment}' must not start with '.' and may use only letters, digits and '_.-+=@,'`,
      );
    }
  }
}

/** A list prefix is any string a key may start with (it need not end on a `/`). */
export function assertArtifactPrefix(prefix: string): void {
  if (prefix.startsWith('/') || prefix.split('/').some((s) => s === '..')) {
    throw new InvalidKeyError(prefix, 'a prefix must be a relative path without ..');
  }
}
