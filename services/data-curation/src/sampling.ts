import type { commonV1, policyV1 } from '@mstar/contracts';
import { UnavailableError } from '@mstar/errors';
import type { PolicyClient } from '@mstar/policy-inference';

/** What curation needs of policy-inference. */
export type PolicyApi = Pick<PolicyClient, 'generate' | 'getModelInfo'>;

/** The sampling settings shared by every prompt of a Generate call. */
export interface SampleSettings {
  readonly numSamples: number;
  readonly temperature: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  /** The pinned policy version. */
  readonly policy: commonV1.CheckpointRef;
}

/**
 * One Generate call: the completions of every prompt, indexed [prompt][sample]. The server streams
 * them in completion order; a missing or duplicated completion, or one from another policy than
 * the pinned one, means the answer cannot be trusted, so it fails the call (UNAVAILABLE: retried
 * with the event).
 */
export async function sample(
  policy: PolicyApi,
  prompts: readonly commonV1.Prompt[],
  settings: SampleSettings,
  signal: AbortSignal,
): Promise<policyV1.Completion[][]> {
  const out: (policyV1.Completion | undefined)[][] = prompts.map(() => new Array<policyV1.Completion | undefined>(settings.numSamples));
  let received = 0;
  for await (const completion of policy.generate({ prompts: [...prompts], ...settings }, { signal })) {
    const row = out[completion.promptIndex];
    const pinned = settings.policy;
    if (row === undefined || completion.sampleIndex >= settings.numSamples || row[completion.sampleIndex] !== undefined) {
      throw new UnavailableError(`policy-inference answered an unexpected completion (prompt ${completion.promptIndex}, sample ${completion.sampleIndex})`);
    }
    if (completion.policy !== undefined && (completion.policy.runId !== pinned.runId || completion.policy.version !== pinned.version)) {
      throw new UnavailableError(`policy-inference answered with policy ${completion.policy.runId} v${completion.policy.version}, not the pinned v${pinned.version}`);
    }
    row[completion.sampleIndex] = completion;
    received++;
  }
  const expected = prompts.length * settings.numSamples;
  if (received !== expected) throw new UnavailableError(`policy-inference answered ${received} of ${expected} completions`);
  return out as policyV1.Completion[][];
}

/** Generate calls a stage keeps in flight (see mapInOrder). */
export const CALLS_IN_FLIGHT = 2;

/** Splits `items` into consecutive chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * `fn` over every item with at most `concurrency` calls in flight, results in input order. Two
 * calls in flight keep the policy server's queue fed while this side verifies the last answer,
 * and the order of the results never depends on which call finished first.
 */
export async function mapInOrder<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        // The other worker finishes its call but starts no new one.
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, () => worker()));
  return results;
}
