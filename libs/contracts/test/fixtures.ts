import { commonV1, runV1 } from '../src/index.js';

/**
 * A RunSpec with every field set to a non-default value, so a round trip that dropped or
 * mangled any field would show.
 */
export function fullRunSpec(): runV1.RunSpec {
  return {
    name: 'mstar reward-pass balancer',
    seed: 1234,
    model: { preset: commonV1.ModelPreset.TINY },
    world: { poolSize: 4000, validationSize: 250, inDomainTestSize: 500, outOfDomainTestSize: 300, worldSeed: 77, chainStyle: runV1.ChainStyle.TALLY, answerStyle: runV1.AnswerStyle.WORKED },
    warmup: { examples: 2000, epochs: 3, learningRate: 3e-4, batchSize: 32, visionPretrainingSteps: 150, hinted: true },
    prm: { prompts: 200, samplesPerPrompt: 4, rolloutsPerStep: 8, epochs: 2, learningRate: 1e-4, batchSize: 16 },
    iterations: 8,
    trainingMethod: runV1.TrainingMethod.CONTINUOUS,
    intervalFraction: 0.25,
    intervalStart: 3,
    samplesPerPrompt: 16,
    topP: 0.95,
    maxNewTokens: 192,
    selection: { rule: runV1.SelectionRule.PRM_TOP_K, k: 2, alpha: 0.6, chainCheck: runV1.ChainCheck.UNSPECIFIED, distinct: false, balanceAnswers: false, unsolvedOnly: false, greedyFirst: false, rationalize: true },
    aggregation: commonV1.Aggregation.MIN,
    temperature: {
      mode: runV1.TemperatureMode.BALANCER_REWARD_PASS_AT_K,
      staticTemperature: 1,
      grid: { grid: { $case: 'range', value: { min: 0.3, max: 1.6, step: 0.1 } } },
      retuneEvery: 2,
      rewardPassK: 2,
      evalSamplesPerPrompt: 16,
    },
    optimizer: {
      learningRate: 1e-5,
      schedule: runV1.LrSchedule.COSINE,
      warmupSteps: 10,
      decaySteps: 500,
      minLearningRate: 1e-6,
      weightDecay: 0.01,
      gradClip: 1,
      batchSize: 64,
      epochsPerIteration: 1,
      continueWarmup: true,
    },
    evaluation: { splits: [runV1.TestSplit.IN_DOMAIN, runV1.TestSplit.OUT_OF_DOMAIN] },
  };
}

export function policyRef(runId: string, version: number): commonV1.CheckpointRef {
  return { runId, kind: commonV1.CheckpointKind.POLICY, version };
}

export function iterationStats(runId: string, iteration: number): commonV1.IterationStats {
  return {
    iteration,
    policy: policyRef(runId, iteration),
    temperature: 0.9,
    greedyAccuracyValidation: 0.412,
    greedyAccuracyInDomain: 0.4,
    greedyAccuracyOutOfDomain: undefined,
    evalTemperature: 1.1,
    passAtK: 0.78,
    rewardPassAtK: 0.55,
    passAtKGap: 0.368,
    samplesPerPrompt: 16,
    rewardPassK: 2,
    datasetSize: 1800,
    wallSeconds: 93.5,
    evaluatedAt: new Date('2026-11-25T16:00:00.000Z'),
  };
}
