import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { balancerV1, commonV1, createEvent, eventsV1, eventSubject, policyV1, prmV1, type EventPayload, type runV1 } from '@mstar/contracts';
import { createInProcessBus, type EventBus } from '@mstar/events';
import { createClient, promiseClient } from '@mstar/grpc';
import { runItems } from '@mstar/recipes';
import { parseRunSpec } from '@mstar/runspec';
import { createFsArtifactStore, createInMemoryRunStore, type ArtifactStore, type RunStore } from '@mstar/stores';
import { createLogger } from '@mstar/telemetry';
import { startTestGrpcServer } from '@mstar/testing';
import { service as healthService } from 'grpc-health-check';
import { loadConfig, startBalancer, type RunningBalancer, type StartBalancerOptions } from '../src/index.js';

export const silentLogger = createLogger({ service: 'balancer-test', level: 'silent' });

/** A tiny run: 4 validation prompts, 4 in-domain and 2+2 out-of-domain test prompts, grid 0.5 / 1.0 / 1.5, K = 4, k = 2. */
export const TINY_SPEC_YAML = `
name: balancer-test
seed: 7
model: { preset: TINY }
world: { pool_size: 8, validation_size: 4, in_domain_test_size: 4, out_of_domain_test_size: 2, world_seed: 1 }
warmup: { examples: 6, epochs: 1, learning_rate: 0.001, batch_size: 2 }
prm: { prompts: 2, samples_per_prompt: 1, rollouts_per_step: 1, epochs: 1, learning_rate: 0.001, batch_size: 2 }
iterations: 2
interval_fraction: 0.5
samples_per_prompt: 4
max_new_tokens: 16
temperature:
  mode: BALANCER_REWARD_PASS_AT_K
  static_temperature: 1.0
  grid: { list: { values: [0.5, 1.0, 1.5] } }
  retune_every: 1
  reward_pass_k: 2
  eval_samples_per_prompt: 4
optimizer: { learning_rate: 0.001, batch_size: 2 }
evaluation: { splits: [IN_DOMAIN, OUT_OF_DOMAIN] }
`;

export function tinySpec(edit: (spec: runV1.RunSpec) => void = () => undefined): runV1.RunSpec {
  const spec = parseRunSpec(TINY_SPEC_YAML);
  edit(spec);
  return spec;
}

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What the scripted policy answers: per version and temperature, `m` prompts have a correct sample, the first `r` of them ranked first by the PRM. */
export interface SampleTable {
  readonly m: number;
  readonly r: number;
}

export interface PolicyScript {
  /** Correct greedy answers per split: the first n prompts of the split are answered correctly. */
  greedy(split: string, version: number): number;
  /** Keyed by version, then by temperature. */
  samples: Record<number, Record<number, SampleTable>>;
}

/**
 * Sample j of prompt p at a temperature whose table is {m, r}: for p < r, sample 0 is correct
 * with score 0.9 and the rest wrong at 0.1 (Reward-Pass hit); for r <= p < m, sample 0 is correct
 * at 0.1 and the rest wrong at 0.9 (Pass@K hit, Reward-Pass@2 miss); beyond m all are wrong
 * answers without steps, which the PRM client ranks last without asking the PRM (score -1 here).
 * So Pass@K = m / n, Reward-Pass@2 = r / n and sample accuracy = m / (n K).
 */
function scripted(table: SampleTable | undefined, index: number, sample: number): { correct: boolean; score: number } {
  if (table === undefined || index >= table.m) return { correct: false, score: -1 };
  if (index < table.r) return sample === 0 ? { correct: true, score: 0.9 } : { correct: false, score: 0.1 };
  return sample === 0 ? { correct: true, score: 0.1 } : { correct: false, score: 0.9 };
}

const response = (correct: boolean, gold: string, score: number): string =>
  score < 0 ? '# Answer\n\nzzz' : `score=${score}\n\n# Answer\n\n${correct ? gold : 'zzz'}`;

/** Gold answers of every split of a world, by prompt id (`validation-00003` -> its split and index). */
function goldOf(world: runV1.WorldSettings): Map<string, { split: string; index: number; answer: string }> {
  const out = new Map<string, { split: string; index: number; answer: string }>();
  for (const split of ['validation', 'test', 'test-ood-compose', 'test-ood-style'] as const) {
    runItems(world, split).forEach((item, index) => out.set(item.id, { split, index, answer: item.answer }));
  }
  return out;
}

export interface GenerateCall {
  readonly version: number;
  readonly temperature: number;
  readonly numSamples: number;
  readonly seed: number;
  readonly prompts: number;
}

export interface FakePolicy {
  readonly address: string;
  /** The version GetModelInfo reports (undefined: nothing loaded, UNAVAILABLE). */
  served: { runId: string; version: number } | undefined;
  readonly generateCalls: GenerateCall[];
  greedyCalls: number;
  /** When set, Generate fails with this status. */
  failWith: grpc.status | undefined;
  /** Delays each Generate answer (to catch an evaluation in flight). */
  delayMs: number;
  close(): Promise<void>;
}

/** A PolicyInferenceService on port 0 answering from `script`, with the pinned version checked like the real one. */
export async function startFakePolicy(world: runV1.WorldSettings, script: PolicyScript): Promise<FakePolicy> {
  const gold = goldOf(world);
  const lookup = (id: string) => {
    const g = gold.get(id);
    if (g === undefined) throw new Error(`unknown prompt ${id}`);
    return g;
  };
  const unknownVersion = (ref: commonV1.CheckpointRef | undefined): grpc.ServiceError | undefined => {
    if (fake.served === undefined || (ref !== undefined && ref.version > fake.served.version)) {
      return Object.assign(new Error('not served'), { code: grpc.status.NOT_FOUND, details: 'policy version not served', metadata: new grpc.Metadata() });
    }
    return undefined;
  };
  const implementation: policyV1.PolicyInferenceServiceServer = {
    generate(call) {
      const req = call.request;
      const version = req.policy?.version ?? -1;
      fake.generateCalls.push({ version, temperature: req.temperature, numSamples: req.numSamples, seed: req.seed, prompts: req.prompts.length });
      const fail = unknownVersion(req.policy);
      setTimeout(() => {
        if (fail !== undefined) {
          call.emit('error', fail);
          return;
        }
        if (fake.failWith !== undefined) {
          call.emit('error', { code: fake.failWith, details: 'scripted failure', metadata: new grpc.Metadata() });
          return;
        }
        req.prompts.forEach((prompt, promptIndex) => {
          const { index, answer } = lookup(prompt.promptId);
          for (let sampleIndex = 0; sampleIndex < req.numSamples; sampleIndex++) {
            const { correct, score } = scripted(script.samples[version]?.[req.temperature], index, sampleIndex);
            const completion = {
              promptIndex,
              promptId: prompt.promptId,
              sampleIndex,
              text: response(correct, answer, score),
              tokenCount: 5,
              finishReason: policyV1.FinishReason.EOS,
              policy: req.policy,
            };
            call.write({ completion });
          }
        });
        call.end();
      }, fake.delayMs);
    },
    generateGreedy(call, callback) {
      fake.greedyCalls++;
      const req = call.request;
      const fail = unknownVersion(req.policy);
      if (fail !== undefined) return callback(fail);
      const version = req.policy?.version ?? -1;
      const completions = req.prompts.map((prompt, promptIndex) => {
        const { split, index, answer } = lookup(prompt.promptId);
        return {
          promptIndex,
          promptId: prompt.promptId,
          sampleIndex: 0,
          text: response(index < script.greedy(split, version), answer, 0),
          tokenCount: 5,
          finishReason: policyV1.FinishReason.EOS,
          policy: req.policy,
        };
      });
      callback(null, { completions });
    },
    getModelInfo(_call, callback) {
      if (fake.served === undefined) return callback({ code: grpc.status.UNAVAILABLE, details: 'no policy loaded', metadata: new grpc.Metadata() });
      callback(null, { policy: { runId: fake.served.runId, kind: commonV1.CheckpointKind.POLICY, version: fake.served.version }, model: undefined, executionProvider: 'fake', loadedAt: new Date() });
    },
  };
  const server = await startTestGrpcServer([{ definition: policyV1.PolicyInferenceServiceService, implementation }]);
  const fake: FakePolicy = { address: server.address, served: undefined, generateCalls: [], greedyCalls: 0, failWith: undefined, delayMs: 0, close: () => server.close() };
  return fake;
}

export interface FakePrm {
  readonly address: string;
  served: { runId: string; version: number } | undefined;
  /** Delays each ScoreSteps answer; `maxInFlight` is the most calls seen at once. */
  delayMs: number;
  maxInFlight: number;
  readonly calls: { aggregation: commonV1.Aggregation; prm: commonV1.CheckpointRef | undefined; targets: number }[];
  close(): Promise<void>;
}

/** A PrmScoringService on port 0 whose score of a response is the `score=` number written in it. */
export async function startFakePrm(): Promise<FakePrm> {
  let inFlight = 0;
  const implementation: prmV1.PrmScoringServiceServer = {
    scoreSteps(call, callback) {
      const req = call.request;
      fake.calls.push({ aggregation: req.aggregation, prm: req.prm, targets: req.targets.length });
      const scores = req.targets.map((target, targetIndex) => {
        const score = Number(/score=([0-9.]+)/.exec(target.response)?.[1] ?? NaN);
        return { targetIndex, promptId: req.prompts[target.promptIndex]?.promptId ?? '', stepScores: [score], aggregateScore: score, stepCount: 1 };
      });
      inFlight++;
      fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        callback(null, { scores, prm: req.prm });
      }, fake.delayMs);
    },
    getModelInfo(_call, callback) {
      if (fake.served === undefined) return callback({ code: grpc.status.UNAVAILABLE, details: 'no PRM loaded', metadata: new grpc.Metadata() });
      callback(null, { prm: { runId: fake.served.runId, kind: commonV1.CheckpointKind.PRM, version: fake.served.version }, model: undefined, executionProvider: 'fake', loadedAt: new Date() });
    },
  };
  const server = await startTestGrpcServer([{ definition: prmV1.PrmScoringServiceService, implementation }]);
  const fake: FakePrm = { address: server.address, served: undefined, delayMs: 0, maxInFlight: 0, calls: [], close: () => server.close() };
  return fake;
}

/** The bus with every publish recorded (duplicates the bus drops included), to see what the balancer re-publishes. */
export function recordingBus(inner: EventBus): { bus: EventBus; published: eventsV1.Event[] } {
  const published: eventsV1.Event[] = [];
  const bus: EventBus = {
    publish: (subject, data, opts) => {
      published.push(eventsV1.Event.decode(data));
      return inner.publish(subject, data, opts);
    },
    consume: (opts) => inner.consume(opts),
    deadLetterSubject: (durable) => inner.deadLetterSubject(durable),
    close: () => inner.close(),
  };
  return { bus, published };
}

export async function publishEvent(bus: EventBus, runId: string, payload: EventPayload, msgIdSuffix = ''): Promise<void> {
  const event = createEvent({ runId, payload, source: 'test' });
  await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId + msgIdSuffix });
}

export type BalancerClient = ReturnType<typeof promiseClient<balancerV1.BalancerServiceClient>> & {
  readonly raw: balancerV1.BalancerServiceClient;
  /** Every message of a WatchRun call until the server ends it; `onMessage` sees each as it arrives. */
  watch(runId: string, signal?: AbortSignal, onMessage?: (message: balancerV1.WatchRunResponse) => void): Promise<balancerV1.WatchRunResponse[]>;
};

export function balancerClient(address: string): BalancerClient {
  const raw = createClient(balancerV1.BalancerServiceClient, address, { deadlineMs: 10_000, streamDeadlineMs: 60_000, retry: false });
  return Object.assign(promiseClient(raw), {
    raw,
    async watch(runId: string, signal?: AbortSignal, onMessage?: (message: balancerV1.WatchRunResponse) => void): Promise<balancerV1.WatchRunResponse[]> {
      const call = raw.watchRun({ runId });
      signal?.addEventListener('abort', () => call.cancel(), { once: true });
      const out: balancerV1.WatchRunResponse[] = [];
      for await (const message of call as AsyncIterable<balancerV1.WatchRunResponse>) {
        out.push(message);
        onMessage?.(message);
      }
      return out;
    },
  });
}

// grpc-health-check's definition is loaded with `enums: String`.
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

/** grpc.health.v1 Check of `service`: 'SERVING' / 'NOT_SERVING'. */
export async function healthStatus(address: string, service: string): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check(req: { service: string }, options: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
  };
  try {
    return await new Promise((resolve, reject) => client.check({ service }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.status))));
  } finally {
    client.close();
  }
}

/** The status code of a failed call. */
export async function failure(promise: Promise<unknown>): Promise<{ code: grpc.status; details: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

export interface Harness {
  readonly balancer: RunningBalancer;
  readonly client: BalancerClient;
  /** The bus the other services publish on (the balancer's publishes are recorded in `published`). */
  readonly bus: EventBus;
  /** Everything the balancer published (its own events, duplicates included). */
  readonly published: eventsV1.Event[];
  /** Every event on the bus, in stream order, as an observer consumer sees it. */
  readonly events: eventsV1.Event[];
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly policy: FakePolicy;
  readonly prm: FakePrm;
  close(): Promise<void>;
}

export const DEFAULT_SCRIPT: PolicyScript = { greedy: () => 0, samples: {} };

export interface HarnessOptions {
  readonly script?: PolicyScript;
  readonly bus?: EventBus;
  readonly runStore?: RunStore;
  readonly env?: Record<string, string>;
  readonly extra?: Partial<StartBalancerOptions>;
}

/** A balancer over the in-process bus, the in-memory run store and a temp artifact dir, with fake inference services. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'balancer-'));
  const artifacts = await createFsArtifactStore({ root });
  const runStore = options.runStore ?? createInMemoryRunStore();
  const inner = options.bus ?? createInProcessBus();
  const { bus, published } = recordingBus(inner);
  const policy = await startFakePolicy(tinySpec().world!, options.script ?? DEFAULT_SCRIPT);
  const prm = await startFakePrm();
  const events: eventsV1.Event[] = [];
  const observer = await inner.consume({
    durable: 'test-observer',
    subjects: 'mstar.events.>',
    decode: (data) => eventsV1.Event.decode(data),
    handler: (event) => {
      events.push(event);
      return Promise.resolve();
    },
  });
  const config = loadConfig({
    GRPC_PORT: '0',
    LOG_LEVEL: 'silent',
    POLICY_ADDRESS: policy.address,
    PRM_ADDRESS: prm.address,
    VERSION_WAIT: '5s',
    SHUTDOWN_GRACE: '1s',
    ...options.env,
  });
  const balancer = await startBalancer({ config, bus, runStore, artifacts, logger: silentLogger, finishGraceMs: 500, ...options.extra });
  const client = balancerClient(`127.0.0.1:${balancer.port}`);
  return {
    balancer,
    client,
    bus: inner,
    published,
    events,
    runStore,
    artifacts,
    policy,
    prm,
    async close() {
      client.raw.close();
      await balancer.close();
      await observer.close();
      await policy.close();
      await prm.close();
      if (options.bus === undefined) await inner.close();
      if (options.runStore === undefined) await runStore.close();
      await artifacts.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
