import { InvalidArgumentError } from '@mstar/errors';

export type FinishReason = 'eos' | 'max_new_tokens' | 'context_limit';

/** What a stopping criterion sees after each sampled token. */
export interface SequenceState {
  readonly promptLength: number;
  /** Generated tokens so far, the newest last. */
  readonly tokens: readonly number[];
}

/** Returns why the sequence must stop now, or null to go on. */
export type StoppingCriterion = (state: SequenceState) => FinishReason | null;

function positiveInt(value: number, field: string): void {
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`${field} must be a positive integer, got ${value}`, { field });
}

/** Stops when the newest token is one of the end-of-sequence ids (an empty list never stops). */
export function eosCriterion(eosIds: number | readonly number[]): StoppingCriterion {
  const ids = new Set(typeof eosIds === 'number' ? [eosIds] : eosIds);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0) throw new InvalidArgumentError(`eos ids must be integers >= 0, got ${id}`, { field: 'eosId' });
  }
  return (s) => (s.tokens.length > 0 && ids.has(s.tokens[s.tokens.length - 1] as number) ? 'eos' : null);
}

export function maxNewTokensCriterion(maxNewTokens: number): StoppingCriterion {
  positiveInt(maxNewTokens, 'maxNewTokens');
  return (s) => (s.tokens.length >= maxNewTokens ? 'max_new_tokens' : null);
}

/** Stops when prompt + generated tokens fill the model's context (no position left for the next token). */
export function contextLimitCriterion(maxContext: number): StoppingCriterion {
  positiveInt(maxContext, 'maxContext');
  return (s) => (s.promptLength + s.tokens.length >= maxContext ? 'context_limit' : null);
}

/** The first criterion that fires, in the order given (so EOS wins over a length limit reached at the same token). */
export function checkStop(criteria: readonly StoppingCriterion[], state: SequenceState): FinishReason | null {
  for (const c of criteria) {
    const reason = c(state);
    if (reason !== null) return reason;
  }
  return null;
}
