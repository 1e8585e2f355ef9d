import { InvalidArgumentError } from '@mstar/errors';
import { describe, expect, it } from 'vitest';
import {
  EVENT_KINDS,
  EVENT_STREAM_SUBJECTS,
  commonV1,
  createEvent,
  eventKind,
  eventMessageId,
  eventSubject,
  eventSubjectFilter,
  eventsV1,
  isValidRunId,
  runV1,
} from '../src/index.js';
import type { EventKind, EventPayload } from '../src/index.js';
import { fullRunSpec, iterationStats, policyRef } from './fixtures.js';

const RUN = 'run_7-a';
const AT = new Date('2026-11-25T16:10:00.500Z');

function checkpoint(kind: commonV1.CheckpointKind, version: number, runId = RUN): commonV1.Checkpoint {
  return {
    ref: { runId, kind, version },
    iteration: version,
    artifactPrefix: `runs/${runId}/checkpoints/${kind === commonV1.CheckpointKind.PRM ? 'prm' : 'policy'}/${version}/`,
    createdAt: AT,
    trainingExamples: 1500,
    parent: kind === commonV1.CheckpointKind.POLICY && version > 0 ? policyRef(runId, version - 1) : undefined,
    optimizerStep: 240,
  };
}

function dataset(iteration: number): commonV1.DatasetStats {
  return {
    iteration,
    promptsTried: 1000,
    promptsWithCorrect: 640,
    samplesGenerated: 16000,
    correctSamples: 5200,
    checkedSamples: 5200,
    promptsSolvedGreedily: 130,
    promptsRationalized: 90,
    keptSamples: 1280,
    meanPrmScore: 0.71,
    temperature: 1.1,
    policy: policyRef(RUN, iteration - 1),
    artifactKey: `runs/${RUN}/datasets/${iteration}.jsonl`,
    poolStart: 2000,
    createdAt: AT,
  };
}

/** One payload of every kind, with its expected de-duplication id and subject token. */
const CASES: { readonly [K in EventKind]: { payload: EventPayload; id: string; token: string } } = {
  runStarted: {
    payload: { $case: 'runStarted', value: { spec: fullRunSpec() } },
    id: `run/${RUN}/started`,
    token: 'run_started',
  },
  runFinished: {
    payload: {
      $case: 'runFinished',
      value: { state: runV1.RunState.SUCCEEDED, errorMessage: '', summary: [iterationStats(RUN, 0), iterationStats(RUN, 1)] },
    },
    id: `run/${RUN}/finished`,
    token: 'run_finished',
  },
  runCancelled: {
    payload: { $case: 'runCancelled', value: { reason: 'superseded by run_8' } },
    id: `run/${RUN}/cancelled`,
    token: 'run_cancelled',
  },
  checkpointPublished: {
    payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.POLICY, 3) } },
    id: `run/${RUN}/checkpoint/policy/3`,
    token: 'checkpoint_published',
  },
  prmDataReady: {
    payload: {
      $case: 'prmDataReady',
      value: {
        artifactKey: `runs/${RUN}/prm-data.jsonl`,
        sourcePolicy: policyRef(RUN, 0),
        prompts: 200,
        trajectories: 800,
        labelledSteps: 3100,
        rollouts: 24800,
        meanStepLabel: 0.58,
      },
    },
    id: `run/${RUN}/prm-data/policy/0`,
    token: 'prm_data_ready',
  },
  temperatureSelected: {
    payload: {
      $case: 'temperatureSelected',
      value: {
        iteration: 3,
        temperature: 1.2,
        mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K,
        swept: true,
        sweep: {
          policy: policyRef(RUN, 2),
          samplesPerPrompt: 16,
          rewardPassK: 2,
          validationPrompts: 250,
          greedyAccuracy: 0.42,
          rows: [
            { temperature: 1.1, passAtK: 0.8, rewardPassAtK: 0.56, sampleAccuracy: 0.33 },
            { temperature: 1.2, passAtK: 0.82, rewardPassAtK: 0.58, sampleAccuracy: 0.31 },
          ],
        },
        policy: policyRef(RUN, 2),
      },
    },
    id: `run/${RUN}/iteration/3/temperature`,
    token: 'temperature_selected',
  },
  datasetReady: {
    payload: { $case: 'datasetReady', value: { dataset: dataset(3) } },
    id: `run/${RUN}/iteration/3/dataset`,
    token: 'dataset_ready',
  },
  iterationEvaluated: {
    payload: { $case: 'iterationEvaluated', value: { stats: iterationStats(RUN, 3) } },
    id: `run/${RUN}/iteration/3/evaluated`,
    token: 'iteration_evaluated',
  },
};

describe('Event', () => {
  it.each(EVENT_KINDS)('%s: its subject token is the payload field name in events.proto', (kind) => {
    // Proto JSON accepts the original field name, so this ties the token to the .proto file.
    expect(eventsV1.Event.fromJSON({ [CASES[kind].token]: {} }).payload?.$case).toBe(kind);
  });

  it.each(EVENT_KINDS)('%s: round-trips through the wire format', (kind) => {
    const event = createEvent({ runId: RUN, payload: CASES[kind].payload, source: 'test', occurredAt: AT });
    const decoded = eventsV1.Event.decode(eventsV1.Event.encode(event).finish());
    expect(decoded).toEqual(event);
    expect(eventKind(decoded)).toBe(kind);
    expect(decoded.occurredAt?.getTime()).toBe(AT.getTime());
  });

  it.each(EVENT_KINDS)('%s: gets its documented id and subject', (kind) => {
    const event = createEvent({ runId: RUN, payload: CASES[kind].payload, source: 'test', occurredAt: AT });
    expect(event.eventId).toBe(CASES[kind].id);
    expect(eventMessageId(event)).toBe(CASES[kind].id);
    expect(eventSubject(event)).toBe(`mstar.events.${RUN}.${CASES[kind].token}`);
    expect(eventSubjectFilter({ runId: RUN, kind })).toBe(eventSubject(event));
  });

  it('derives the id from the logical event only, not from when or by whom it was emitted', () => {
    const first = createEvent({ runId: RUN, payload: CASES.checkpointPublished.payload, source: 'trainer', occurredAt: AT });
    const redo = createEvent({
      runId: RUN,
      payload: { $case: 'checkpointPublished', value: { checkpoint: { ...checkpoint(commonV1.CheckpointKind.POLICY, 3), createdAt: new Date() } } },
      source: 'trainer-restarted',
    });
    expect(redo.eventId).toBe(first.eventId);
    expect(eventsV1.Event.decode(eventsV1.Event.encode(redo).finish()).eventId).toBe(first.eventId);
  });

  it('gives different ids to different versions, kinds, iterations and runs', () => {
    const ids = [
      eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.POLICY, 3) } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.POLICY, 4) } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.PRM, 3) } } }),
      eventMessageId({ runId: 'other', payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.POLICY, 3, 'other') } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'datasetReady', value: { dataset: dataset(3) } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'datasetReady', value: { dataset: dataset(4) } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'iterationEvaluated', value: { stats: iterationStats(RUN, 0) } } }),
      eventMessageId({ runId: RUN, payload: { $case: 'iterationEvaluated', value: { stats: iterationStats(RUN, 4) } } }),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    const perKind = EVENT_KINDS.map((kind) => eventMessageId({ runId: RUN, payload: CASES[kind].payload }));
    expect(new Set(perKind).size).toBe(EVENT_KINDS.length);
    expect(ids[2]).toBe(`run/${RUN}/checkpoint/prm/3`);
    expect(ids[6]).toBe(`run/${RUN}/iteration/0/evaluated`);
  });

  it('builds consumer filters for all runs or all kinds', () => {
    expect(eventSubjectFilter()).toBe('mstar.events.*.*');
    expect(eventSubjectFilter({ kind: 'checkpointPublished' })).toBe('mstar.events.*.checkpoint_published');
    expect(eventSubjectFilter({ runId: RUN })).toBe(`mstar.events.${RUN}.*`);
    expect(EVENT_STREAM_SUBJECTS).toBe('mstar.events.>');
  });
});

describe('event id validation', () => {
  function errorOf(fn: () => unknown): InvalidArgumentError {
    try {
      fn();
    } catch (err) {
      if (err instanceof InvalidArgumentError) return err;
      throw err;
    }
    throw new Error('expected an InvalidArgumentError');
  }

  it('rejects run ids that are not one NATS subject token', () => {
    for (const bad of ['', 'a.b', 'a b', 'a*', 'a>', 'a/b', '-lead', 'x'.repeat(65)]) {
      expect(isValidRunId(bad)).toBe(false);
      const err = errorOf(() => eventSubject({ runId: bad, payload: CASES.runStarted.payload }));
      expect(err.field).toBe('run_id');
      expect(err.message).toContain(JSON.stringify(bad));
    }
    expect(isValidRunId('x'.repeat(64))).toBe(true);
    expect(errorOf(() => eventSubjectFilter({ runId: 'a.b' })).field).toBe('runId');
  });

  it('rejects an event without payload', () => {
    expect(errorOf(() => eventMessageId({ runId: RUN, payload: undefined })).field).toBe('payload');
    expect(errorOf(() => eventKind({ payload: undefined })).field).toBe('payload');
  });

  it('rejects unset identifying fields, naming them', () => {
    expect(errorOf(() => eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: undefined } } })).field).toBe(
      'checkpoint_published.checkpoint.ref',
    );
    const noKind = { ...checkpoint(commonV1.CheckpointKind.POLICY, 1), ref: { runId: RUN, kind: commonV1.CheckpointKind.UNSPECIFIED, version: 1 } };
    const kindErr = errorOf(() => eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: noKind } } }));
    expect(kindErr.field).toBe('checkpoint_published.checkpoint.ref.kind');
    expect(kindErr.message).toContain('CHECKPOINT_KIND_UNSPECIFIED');
    const tempErr = errorOf(() =>
      eventMessageId({ runId: RUN, payload: { $case: 'temperatureSelected', value: eventsV1.TemperatureSelected.fromPartial({ temperature: 1 }) } }),
    );
    expect(tempErr.field).toBe('temperature_selected.iteration');
    expect(errorOf(() => eventMessageId({ runId: RUN, payload: { $case: 'datasetReady', value: { dataset: undefined } } })).field).toBe(
      'dataset_ready.dataset',
    );
    expect(errorOf(() => eventMessageId({ runId: RUN, payload: { $case: 'datasetReady', value: { dataset: dataset(0) } } })).field).toBe(
      'dataset_ready.dataset.iteration',
    );
    expect(errorOf(() => eventMessageId({ runId: RUN, payload: { $case: 'iterationEvaluated', value: { stats: undefined } } })).field).toBe(
      'iteration_evaluated.stats',
    );
  });

  it('rejects checkpoint references to another run and a PRM as PRM-data source', () => {
    const foreign = errorOf(() =>
      eventMessageId({ runId: RUN, payload: { $case: 'checkpointPublished', value: { checkpoint: checkpoint(commonV1.CheckpointKind.POLICY, 2, 'other') } } }),
    );
    expect(foreign.field).toBe('checkpoint_published.checkpoint.ref.run_id');
    expect(foreign.message).toContain('"other"');
    const prmSource = errorOf(() =>
      eventMessageId({
        runId: RUN,
        payload: {
          $case: 'prmDataReady',
          value: eventsV1.PrmDataReady.fromPartial({ sourcePolicy: { runId: RUN, kind: commonV1.CheckpointKind.PRM, version: 0 } }),
        },
      }),
    );
    expect(prmSource.field).toBe('prm_data_ready.source_policy.kind');
  });
});
