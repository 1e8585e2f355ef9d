import { once } from 'node:events';
import { assertValidRunId, type commonV1, type curationV1 } from '@mstar/contracts';
import { InvalidArgumentError, NotFoundError } from '@mstar/errors';
import { serverStream, unary } from '@mstar/grpc';
import { decodeDatasetRecords } from '@mstar/recipes';
import { getRun } from '@mstar/runs';
import { intervalSize, poolSlice, validateRunSpec } from '@mstar/runspec';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { listDatasetStats, readDatasetStats } from './outputs.js';

export interface CurationServiceDeps {
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
}

function checkIteration(iteration: number): void {
  if (!Number.isInteger(iteration) || iteration < 1) throw new InvalidArgumentError(`iteration must be >= 1 (iterations are 1-based), got ${iteration}`, { field: 'iteration' });
}

async function datasetOf(deps: CurationServiceDeps, runId: string, iteration: number): Promise<commonV1.DatasetStats> {
  assertValidRunId(runId);
  checkIteration(iteration);
  const stats = await readDatasetStats(deps.artifacts, runId, iteration);
  if (stats === undefined) throw new NotFoundError(`run ${runId} has no dataset for iteration ${iteration}`);
  return stats;
}

/**
 * The gRPC handlers of `mstar.curation.v1.DataCurationService`: read-only views of the datasets
 * (from their COMPLETE markers and JSONL files) and of the pool cursor (from the run's spec and
 * the datasets written so far).
 */
export function createCurationService(deps: CurationServiceDeps): curationV1.DataCurationServiceServer {
  return {
    listDatasets: unary(async (req) => {
      assertValidRunId(req.runId);
      const datasets = await listDatasetStats(deps.artifacts, req.runId);
      // A run without datasets yet is known when it has a record.
      if (datasets.length === 0) await getRun(deps.runStore, req.runId);
      return { datasets };
    }),
    getDataset: unary(async (req) => ({ dataset: await datasetOf(deps, req.runId, req.iteration) })),
    streamDatasetRecords: serverStream(async (req, call, signal) => {
      const stats = await datasetOf(deps, req.runId, req.iteration);
      let records: curationV1.DatasetRecord[];
      try {
        records = decodeDatasetRecords(await deps.artifacts.get(stats.artifactKey), stats.artifactKey);
      } catch (cause) {
        // The request is fine; the stored file is not: INTERNAL, with the cause logged.
        throw new Error(`dataset ${stats.artifactKey} cannot be read`, { cause });
      }
      for (const record of records) {
        if (signal.aborted) return;
        if (!call.write({ record })) await once(call, 'drain', { signal });
      }
    }),
    getPoolCursor: unary(async (req) => {
      assertValidRunId(req.runId);
      const run = await getRun(deps.runStore, req.runId);
      if (run.spec === undefined) throw new NotFoundError(`run ${req.runId} has no spec`);
      const spec = validateRunSpec(run.spec);
      const datasets = await listDatasetStats(deps.artifacts, req.runId);
      const nextIteration = datasets.reduce((last, d) => Math.max(last, d.iteration), 0) + 1;
      const interval = intervalSize(spec);
      return {
        position: poolSlice(spec, nextIteration).start,
        poolSize: spec.world.poolSize,
        interval,
        nextIteration,
        passes: Math.floor(((nextIteration - 1) * interval) / spec.world.poolSize),
      };
    }),
  };
}
