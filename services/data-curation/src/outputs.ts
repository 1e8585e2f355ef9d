import { commonV1, type curationV1, eventsV1 } from '@mstar/contracts';
import { InvalidArgumentError } from '@mstar/errors';
import { encodeDatasetRecords, encodePrmData, type PrmTrajectory } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import type { ArtifactStore } from '@mstar/stores';

/**
 * The outputs of data curation in the artifact store. Each output is a JSONL file and its
 * `COMPLETE` marker (runArtifacts' key), written in that order: the marker's body is the output's
 * statistics as JSON, so a complete output always has its numbers, a re-delivered event can be
 * answered from them, and the gRPC queries read nothing else.
 */

/** The numbers of the PRM data: the PrmDataReady event, plus what the event has no field for. */
export interface PrmDataSummary {
  readonly event: eventsV1.PrmDataReady;
  readonly samples: number;
  readonly correctSamples: number;
  readonly droppedSamples: number;
}

async function readMarker(artifacts: ArtifactStore, key: string): Promise<Record<string, unknown> | undefined> {
  if (!(await artifacts.exists(key))) return undefined;
  try {
    const value = await artifacts.getJson<unknown>(key);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch (error) {
    // A marker that cannot be read is no proof of a finished output; the stage is redone.
    if (error instanceof InvalidArgumentError) return undefined;
    throw error;
  }
}

/** Removes a partial output (data written, marker missing) so nobody reads it while it is redone. */
export async function clearOutput(artifacts: ArtifactStore, runId: string, dataKey: string): Promise<void> {
  await artifacts.delete(runArtifacts(runId).complete(dataKey));
  await artifacts.delete(dataKey);
}

/** The stats of iteration i's dataset, or undefined while it is not complete. */
export async function readDatasetStats(artifacts: ArtifactStore, runId: string, iteration: number): Promise<commonV1.DatasetStats | undefined> {
  const keys = runArtifacts(runId);
  const marker = await readMarker(artifacts, keys.complete(keys.dataset(iteration)));
  return marker === undefined ? undefined : commonV1.DatasetStats.fromJSON(marker);
}

/** Writes a dataset: the JSONL records, then the marker holding its stats. */
export async function writeDataset(
  artifacts: ArtifactStore,
  runId: string,
  stats: commonV1.DatasetStats,
  records: readonly curationV1.DatasetRecord[],
): Promise<void> {
  await artifacts.put(stats.artifactKey, encodeDatasetRecords(records));
  await artifacts.putJson(runArtifacts(runId).complete(stats.artifactKey), commonV1.DatasetStats.toJSON(stats));
}

/** The stats of every complete dataset of a run, in iteration order. */
export async function listDatasetStats(artifacts: ArtifactStore, runId: string): Promise<commonV1.DatasetStats[]> {
  const keys = runArtifacts(runId);
  const markers = (await artifacts.list(`${keys.root}/datasets/`)).filter((k) => k.endsWith('.jsonl.COMPLETE'));
  const stats: commonV1.DatasetStats[] = [];
  for (const key of markers) {
    const marker = await readMarker(artifacts, key);
    if (marker !== undefined) stats.push(commonV1.DatasetStats.fromJSON(marker));
  }
  return stats.sort((a, b) => a.iteration - b.iteration);
}

/** The numbers of the run's PRM data, or undefined while it is not complete. */
export async function readPrmDataSummary(artifacts: ArtifactStore, runId: string): Promise<PrmDataSummary | undefined> {
  const keys = runArtifacts(runId);
  const marker = await readMarker(artifacts, keys.complete(keys.prmData));
  if (marker === undefined) return undefined;
  const count = (name: string): number => (typeof marker[name] === 'number' ? marker[name] : 0);
  return {
    event: eventsV1.PrmDataReady.fromJSON(marker['prmDataReady']),
    samples: count('samples'),
    correctSamples: count('correctSamples'),
    droppedSamples: count('droppedSamples'),
  };
}

/** Writes the PRM data: the JSONL trajectories, then the marker holding its numbers. */
export async function writePrmData(artifacts: ArtifactStore, runId: string, summary: PrmDataSummary, trajectories: readonly PrmTrajectory[]): Promise<void> {
  const key = summary.event.artifactKey;
  await artifacts.put(key, encodePrmData(trajectories));
  await artifacts.putJson(runArtifacts(runId).complete(key), {
    prmDataReady: eventsV1.PrmDataReady.toJSON(summary.event),
    samples: summary.samples,
    correctSamples: summary.correctSamples,
    droppedSamples: summary.droppedSamples,
  });
}
