import type { ServiceError } from '@grpc/grpc-js';
import { Status } from '@mstar/grpc';
import { decodeDatasetRecords, runItems } from '@mstar/recipes';
import { runArtifacts } from '@mstar/runspec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specOf, startHarness, temperatureSelected, WRONG, type Harness, type PolicyScript } from './fixture.js';

const spec = specOf({ selection: { rule: 'ALL_CORRECT' } });
const pool = runItems(spec.world, 'pool');
const gold = new Map(pool.map((item) => [item.id, item.answer]));
/** Samples 0 and 2 of every prompt are correct. */
const script: PolicyScript = (prompt, s) => `look\n\n# Answer\n\n${s % 2 === 0 ? (gold.get(prompt.promptId) as string) : WRONG}`;

async function failure(work: () => Promise<unknown>): Promise<ServiceError> {
  try {
    await work();
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded but was expected to fail');
}

describe('DataCurationService', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ script });
    await h.startRun('q', spec);
    await h.publish('q', temperatureSelected('q', 1, 0.9));
    await h.waitFor((e) => e.payload?.$case === 'datasetReady', 'DatasetReady');
  });
  afterAll(async () => {
    await h.close();
  });

  it('lists, gets and streams the datasets of a run', async () => {
    const { datasets } = await h.curation.listDatasets({ runId: 'q' });
    expect(datasets).toHaveLength(1);
    expect(datasets[0]).toMatchObject({ iteration: 1, promptsTried: 3, samplesGenerated: 12, correctSamples: 6, keptSamples: 6, temperature: 0.9 });
    expect(datasets[0]?.createdAt).toBeInstanceOf(Date);
    expect((await h.curation.getDataset({ runId: 'q', iteration: 1 })).dataset).toEqual(datasets[0]);
    const streamed = await h.curation.streamRecords({ runId: 'q', iteration: 1 });
    expect(streamed).toEqual(decodeDatasetRecords(await h.artifacts.get(runArtifacts('q').dataset(1))));
    expect(streamed.map((r) => r.sampleIndex)).toEqual([0, 2, 0, 2, 0, 2]);
  });

  it('answers a known run without datasets with an empty list', async () => {
    await h.startRun('fresh', spec);
    expect(await h.curation.listDatasets({ runId: 'fresh' })).toEqual({ datasets: [] });
    expect(await h.curation.getPoolCursor({ runId: 'fresh' })).toEqual({ position: 0, poolSize: 8, interval: 3, nextIteration: 1, passes: 0 });
  });

  it('rejects malformed run ids with INVALID_ARGUMENT naming the field', async () => {
    for (const call of [
      () => h.curation.listDatasets({ runId: 'bad id!' }),
      () => h.curation.getDataset({ runId: '', iteration: 1 }),
      () => h.curation.streamRecords({ runId: 'a/b', iteration: 1 }),
      () => h.curation.getPoolCursor({ runId: '-x' }),
    ]) {
      const err = await failure(call);
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.details).toContain('run_id');
    }
  });

  it('rejects iteration 0 with INVALID_ARGUMENT', async () => {
    for (const call of [() => h.curation.getDataset({ runId: 'q', iteration: 0 }), () => h.curation.streamRecords({ runId: 'q', iteration: 0 })]) {
      const err = await failure(call);
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.details).toContain('iteration');
    }
  });

  it('answers NOT_FOUND for unknown runs and datasets not built', async () => {
    for (const call of [
      () => h.curation.listDatasets({ runId: 'nobody' }),
      () => h.curation.getPoolCursor({ runId: 'nobody' }),
      () => h.curation.getDataset({ runId: 'nobody', iteration: 1 }),
      () => h.curation.getDataset({ runId: 'q', iteration: 2 }),
      () => h.curation.streamRecords({ runId: 'q', iteration: 2 }),
    ]) {
      expect((await failure(call)).code).toBe(Status.NOT_FOUND);
    }
  });

  it('does not serve a dataset whose COMPLETE marker is missing', async () => {
    const keys = runArtifacts('q');
    const marker = await h.artifacts.get(keys.complete(keys.dataset(1)));
    await h.artifacts.delete(keys.complete(keys.dataset(1)));
    try {
      expect((await failure(() => h.curation.getDataset({ runId: 'q', iteration: 1 }))).code).toBe(Status.NOT_FOUND);
      expect(await h.curation.listDatasets({ runId: 'q' })).toEqual({ datasets: [] });
    } finally {
      await h.artifacts.put(keys.complete(keys.dataset(1)), marker);
    }
  });
});
