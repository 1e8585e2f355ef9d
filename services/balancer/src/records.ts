import { commonV1, eventsV1 } from '@mstar/contracts';
import { runArtifacts } from '@mstar/runspec';
import { ArtifactNotFoundError, type ArtifactStore } from '@mstar/stores';

/*
 * What the balancer keeps besides the run record, in the artifact store under
 * `runs/<run>/balancer/`: one evaluation record per evaluated policy (written before the run
 * record gets its IterationStats row, so a redelivered checkpoint event can re-publish both
 * events from it), and the policy checkpoints it has seen (their publication times give each
 * row's wall-clock duration).
 */

/** One evaluated policy checkpoint: its row, the temperature chosen from it, and both OOD splits. */
export interface EvaluationRecord {
  readonly stats: commonV1.IterationStats;
  /** TemperatureSelected for the next iteration; unset after the last iteration. */
  readonly selection?: eventsV1.TemperatureSelected | undefined;
  /** Greedy accuracy on each out-of-domain split (their mean is the row's out-of-domain accuracy). */
  readonly outOfDomain?: { readonly compose: number; readonly style: number } | undefined;
}

interface StoredEvaluation {
  stats: unknown;
  selection?: unknown;
  outOfDomain?: { compose: number; style: number };
}

const balancerRoot = (runId: string): string => `${runArtifacts(runId).root}/balancer`;
export const evaluationKey = (runId: string, iteration: number): string => `${balancerRoot(runId)}/iteration-${iteration}.json`;
export const policySeenKey = (runId: string, version: number): string => `${balancerRoot(runId)}/policy-v${version}.json`;

async function readJson<T>(store: ArtifactStore, key: string): Promise<T | undefined> {
  try {
    return await store.getJson<T>(key);
  } catch (error) {
    if (error instanceof ArtifactNotFoundError) return undefined;
    throw error;
  }
}

export async function writeEvaluation(store: ArtifactStore, runId: string, record: EvaluationRecord): Promise<void> {
  const stored: StoredEvaluation = { stats: commonV1.IterationStats.toJSON(record.stats) };
  if (record.selection !== undefined) stored.selection = eventsV1.TemperatureSelected.toJSON(record.selection);
  if (record.outOfDomain !== undefined) stored.outOfDomain = { ...record.outOfDomain };
  await store.putJson(evaluationKey(runId, record.stats.iteration), stored);
}

export async function readEvaluation(store: ArtifactStore, runId: string, iteration: number): Promise<EvaluationRecord | undefined> {
  const stored = await readJson<StoredEvaluation>(store, evaluationKey(runId, iteration));
  if (stored === undefined) return undefined;
  return {
    stats: commonV1.IterationStats.fromJSON(stored.stats),
    selection: stored.selection === undefined ? undefined : eventsV1.TemperatureSelected.fromJSON(stored.selection),
    outOfDomain: stored.outOfDomain,
  };
}

/** Remembers a published policy checkpoint (idempotent: the same event writes the same record). */
export async function writePolicySeen(store: ArtifactStore, checkpoint: commonV1.Checkpoint): Promise<void> {
  const ref = checkpoint.ref;
  if (ref === undefined) return;
  await store.putJson(policySeenKey(ref.runId, ref.version), commonV1.Checkpoint.toJSON(checkpoint));
}

export async function readPolicySeen(store: ArtifactStore, runId: string, version: number): Promise<commonV1.Checkpoint | undefined> {
  const stored = await readJson<unknown>(store, policySeenKey(runId, version));
  return stored === undefined ? undefined : commonV1.Checkpoint.fromJSON(stored);
}
