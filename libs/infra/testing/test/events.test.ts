import { commonV1 } from '@mstar/contracts';
import { describe, expect, it } from 'vitest';
import { checkpointPublished } from '../src/events.js';

const { POLICY, PRM } = commonV1.CheckpointKind;

describe('checkpointPublished', () => {
  it('gives a policy checkpoint its version as iteration and the run’s policy prefix', () => {
    const payload = checkpointPublished('run-a', POLICY, 3);
    expect(payload.$case).toBe('checkpointPublished');
    const checkpoint = payload.$case === 'checkpointPublished' ? payload.value.checkpoint : undefined;
    expect(checkpoint).toMatchObject({
      ref: { runId: 'run-a', kind: POLICY, version: 3 },
      iteration: 3,
      artifactPrefix: 'runs/run-a/checkpoints/policy/v3',
      trainingExamples: 0,
      optimizerStep: 0,
      parent: undefined,
    });
    expect(checkpoint?.createdAt).toBeInstanceOf(Date);
  });

  it('gives a PRM checkpoint iteration 0 and the PRM prefix, and takes overrides', () => {
    const at = new Date('2026-01-02T03:04:05Z');
    const payload = checkpointPublished('run-b', PRM, 2, { createdAt: at, trainingExamples: 7 });
    expect(payload.$case === 'checkpointPublished' ? payload.value.checkpoint : undefined).toMatchObject({
      ref: { runId: 'run-b', kind: PRM, version: 2 },
      iteration: 0,
      artifactPrefix: 'runs/run-b/checkpoints/prm/v2',
      createdAt: at,
      trainingExamples: 7,
    });
  });
});
