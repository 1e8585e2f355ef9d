import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balancerV1, commonV1, curationV1, policyV1, prmV1, trainerV1 } from '../src/index.js';
import { policyRef } from './fixtures.js';

type Shape = 'unary' | 'server-streaming';

const SERVICES: ReadonlyArray<{ name: string; definition: ServiceDefinition; methods: Record<string, Shape> }> = [
  {
    name: 'mstar.policy.v1.PolicyInferenceService',
    definition: policyV1.PolicyInferenceServiceService,
    methods: { Generate: 'server-streaming', GenerateGreedy: 'unary', GetModelInfo: 'unary' },
  },
  {
    name: 'mstar.prm.v1.PrmScoringService',
    definition: prmV1.PrmScoringServiceService,
    methods: { ScoreSteps: 'unary', GetModelInfo: 'unary' },
  },
  {
    name: 'mstar.curation.v1.DataCurationService',
    definition: curationV1.DataCurationServiceService,
    methods: { ListDatasets: 'unary', GetDataset: 'unary', StreamDatasetRecords: 'server-streaming', GetPoolCursor: 'unary' },
  },
  {
    name: 'mstar.trainer.v1.TrainerService',
    definition: trainerV1.TrainerServiceService,
    methods: { GetTrainingStatus: 'unary', ListCheckpoints: 'unary', GetCheckpoint: 'unary' },
  },
  {
    name: 'mstar.balancer.v1.BalancerService',
    definition: balancerV1.BalancerServiceService,
    methods: {
      StartRun: 'unary',
      GetRun: 'unary',
      ListRuns: 'unary',
      WatchRun: 'server-streaming',
      CancelRun: 'unary',
      GetTemperature: 'unary',
      ListIterationStats: 'unary',
    },
  },
];

describe('grpc-js service definitions', () => {
  it.each(SERVICES)('$name has exactly the expected methods, paths and streaming flags', ({ name, definition, methods }) => {
    const actual = Object.values(definition).map((method) => ({
      path: method.path,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
    }));
    const expected = Object.entries(methods).map(([rpc, shape]) => ({
      path: `/${name}/${rpc}`,
      requestStream: false,
      responseStream: shape === 'server-streaming',
    }));
    expect(actual).toEqual(expected);
  });

  it('marks Generate as server-streaming under its camel-cased key', () => {
    expect(policyV1.PolicyInferenceServiceService.generate.responseStream).toBe(true);
    expect(policyV1.PolicyInferenceServiceService.generateGreedy.responseStream).toBe(false);
    expect(balancerV1.BalancerServiceService.watchRun.responseStream).toBe(true);
  });
});

describe('generated server and client over a real grpc-js channel', () => {
  const server = new Server();
  let policyClient: InstanceType<typeof policyV1.PolicyInferenceServiceClient>;
  let prmClient: InstanceType<typeof prmV1.PrmScoringServiceClient>;

  // Echo implementations: enough to prove that the generated serializers and method tables work
  // end to end, including a stream and bytes fields.
  const policy: policyV1.PolicyInferenceServiceServer = {
    generate(call) {
      const { prompts, numSamples } = call.request;
      prompts.forEach((prompt, promptIndex) => {
        for (let sampleIndex = 0; sampleIndex < numSamples; sampleIndex++) {
          call.write({
            completion: {
              promptIndex,
              promptId: prompt.promptId,
              sampleIndex,
              text: `${prompt.question} (${prompt.image.length} image bytes, T=${call.request.temperature})`,
              tokenCount: 3,
              finishReason: policyV1.FinishReason.EOS,
              policy: policyRef('r1', 2),
            },
          });
        }
      });
      call.end();
    },
    generateGreedy(_call, callback) {
      callback(null, { completions: [] });
    },
    getModelInfo(_call, callback) {
      callback(null, policyV1.GetModelInfoResponse.fromPartial({ policy: policyRef('r1', 2), executionProvider: 'cpu' }));
    },
  };
  const prm: prmV1.PrmScoringServiceServer = {
    scoreSteps(call, callback) {
      callback(null, {
        scores: call.request.targets.map((target, targetIndex) => {
          const stepScores = target.response.split('\n\n').map((_step, i) => Math.fround(1 / (i + 2)));
          return {
            targetIndex,
            promptId: call.request.prompts[target.promptIndex]?.promptId ?? '',
            stepScores,
            aggregateScore: Math.min(...stepScores),
            stepCount: stepScores.length,
          };
        }),
        prm: { runId: 'r1', kind: commonV1.CheckpointKind.PRM, version: 0 },
      });
    },
    getModelInfo(_call, callback) {
      callback(null, prmV1.GetModelInfoResponse.fromPartial({}));
    },
  };

  beforeAll(async () => {
    server.addService(policyV1.PolicyInferenceServiceService, policy);
    server.addService(prmV1.PrmScoringServiceService, prm);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
    });
    policyClient = new policyV1.PolicyInferenceServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    prmClient = new prmV1.PrmScoringServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(async () => {
    policyClient.close();
    prmClient.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  const prompts: commonV1.Prompt[] = [
    { promptId: 'pool/1', image: Buffer.from([0x89, 0x50, 0x4e, 0x47]), question: 'How many circles?', responsePrefix: '' },
    { promptId: 'pool/2', image: Buffer.from([0xff, 0xd8, 0xff]), question: 'Which is larger?', responsePrefix: 'the larger one is\n\n' },
  ];

  it('streams one Generate response per sequence', async () => {
    const call = policyClient.generate(
      { prompts, numSamples: 3, temperature: 0.7, topP: 1, maxNewTokens: 16, seed: 5, policy: undefined },
      { deadline: Date.now() + 5_000 },
    );
    const completions: policyV1.Completion[] = [];
    for await (const response of call as AsyncIterable<policyV1.GenerateResponse>) {
      if (response.completion !== undefined) completions.push(response.completion);
    }
    expect(completions.map((c) => `${c.promptId}#${c.sampleIndex}`)).toEqual([
      'pool/1#0',
      'pool/1#1',
      'pool/1#2',
      'pool/2#0',
      'pool/2#1',
      'pool/2#2',
    ]);
    expect(completions[0]?.text).toBe('How many circles? (4 image bytes, T=0.7)');
    expect(completions[4]?.finishReason).toBe(policyV1.FinishReason.EOS);
    expect(completions[4]?.policy).toEqual(policyRef('r1', 2));
  });

  it('answers a unary ScoreSteps call with per-step scores', async () => {
    const response = await new Promise<prmV1.ScoreStepsResponse>((resolve, reject) => {
      prmClient.scoreSteps(
        {
          prompts,
          targets: [
            { promptIndex: 1, response: 'a\n\nb\n\nc' },
            { promptIndex: 0, response: 'only step' },
          ],
          aggregation: commonV1.Aggregation.MIN,
          prm: undefined,
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
    expect(response.scores).toEqual([
      { targetIndex: 0, promptId: 'pool/2', stepScores: [0.5, Math.fround(1 / 3), 0.25], aggregateScore: 0.25, stepCount: 3 },
      { targetIndex: 1, promptId: 'pool/1', stepScores: [0.5], aggregateScore: 0.5, stepCount: 1 },
    ]);
    expect(response.prm).toEqual({ runId: 'r1', kind: commonV1.CheckpointKind.PRM, version: 0 });
  });
});
