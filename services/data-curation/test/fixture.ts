import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { commonV1, createEvent, curationV1, eventSubject, eventSubjectFilter, eventsV1, type EventPayload, policyV1, prmV1, runV1 } from '@mstar/contracts';
import { splitSteps } from '@mstar/cot';
import { createInProcessBus, type Consumer, type EventBus } from '@mstar/events';
import { createClient, promiseClient, Status } from '@mstar/grpc';
import { aggregate, type Aggregation } from '@mstar/metrics';
import { createPolicyClient } from '@mstar/policy-inference';
import { createPrmClient } from '@mstar/prm-scoring';
import { createRun, getRun, updateRun } from '@mstar/runs';
import { parseRunSpec, type ResolvedRunSpec } from '@mstar/runspec';
import { createFsArtifactStore, createInMemoryRunStore, type ArtifactStore, type RunStore } from '@mstar/stores';
import { createLogger, createMetrics, type Metrics } from '@mstar/telemetry';
import { checkpointPublished, startTestGrpcServer } from '@mstar/testing';
import { loadConfig, startDataCuration, type CurationProgress, type DataCurationConfig, type PolicyApi, type RunningDataCuration } from '../src/index.js';

export const silentLogger = createLogger({ service: 'data-curation-test', level: 'silent' });

/** A wrong final answer for any item (no gold answer or choice normalises to it). */
export const WRONG = 'zzz';

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);
function merged(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(base[k]) ? merged(base[k], v) : v;
  return out;
}

/** A small spec: pool 8, 3 prompts per iteration, K = 4, PRM data from the last 2 prompts. */
export const BASE_SPEC: Tree = {
  name: 'curation-test',
  seed: 7,
  iterations: 4,
  max_new_tokens: 24,
  samples_per_prompt: 4,
  interval_fraction: 0.375,
  model: { preset: 'TINY' },
  world: { pool_size: 8, validation_size: 4, in_domain_test_size: 0, out_of_domain_test_size: 0, world_seed: 3 },
  warmup: { examples: 4, epochs: 1, learning_rate: 0.001, batch_size: 4 },
  prm: { prompts: 2, samples_per_prompt: 3, rollouts_per_step: 4, epochs: 1, learning_rate: 0.001, batch_size: 4 },
  selection: { rule: 'PRM_TOP_K', k: 1 },
  aggregation: 'MIN',
  optimizer: { learning_rate: 0.0001, batch_size: 4 },
};

export function specOf(over: Tree = {}): ResolvedRunSpec {
  return parseRunSpec(JSON.stringify(merged(BASE_SPEC, over)));
}

// ---- fake policy-inference ---------------------------------------------------------------

/** Scripted text of one sample: of a fresh prompt (prefix '') or a continuation of a prefix. */
export type PolicyScript = (prompt: commonV1.Prompt, sampleIndex: number, request: policyV1.GenerateRequest) => string;

export interface FakePolicy {
  readonly address: string;
  readonly requests: policyV1.GenerateRequest[];
  /** The run and version GetModelInfo reports. */
  served: { runId: string; version: number };
  /** While set, Generate calls wait for it before answering. */
  hold: Promise<void> | undefined;
  /** Resolves when the next Generate call arrives. */
  nextCall(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A PolicyInferenceService on port 0 answering from a script. Completions are streamed in
 * reverse order (the real server streams in completion order, not request order) and carry the
 * pinned policy.
 */
export async function startFakePolicy(script: PolicyScript): Promise<FakePolicy> {
  const waiting: (() => void)[] = [];
  const fake: Omit<FakePolicy, 'address' | 'close'> = {
    requests: [],
    served: { runId: 'none', version: 0 },
    hold: undefined,
    nextCall: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
  const implementation = {
    generate: (call: grpc.ServerWritableStream<policyV1.GenerateRequest, policyV1.GenerateResponse>) => {
      const req = call.request;
      fake.requests.push(req);
      waiting.splice(0).forEach((resolve) => resolve());
      void (async () => {
        await fake.hold;
        const out: policyV1.Completion[] = [];
        req.prompts.forEach((prompt, promptIndex) => {
          for (let s = 0; s < req.numSamples; s++) {
            out.push({
              promptIndex,
              promptId: prompt.promptId,
              sampleIndex: s,
              text: script(prompt, s, req),
              tokenCount: 5,
              finishReason: policyV1.FinishReason.EOS,
              policy: req.policy ?? { runId: fake.served.runId, kind: commonV1.CheckpointKind.POLICY, version: fake.served.version },
            });
          }
        });
        for (const completion of out.reverse()) {
          if (call.cancelled) return;
          call.write({ completion });
        }
        call.end();
      })();
    },
    generateGreedy: (_call: unknown, callback: grpc.sendUnaryData<policyV1.GenerateGreedyResponse>) => callback(null, { completions: [] }),
    getModelInfo: (_call: unknown, callback: grpc.sendUnaryData<policyV1.GetModelInfoResponse>) =>
      callback(null, policyV1.GetModelInfoResponse.fromPartial({ policy: { runId: fake.served.runId, kind: commonV1.CheckpointKind.POLICY, version: fake.served.version }, executionProvider: 'fake' })),
  };
  const server = await startTestGrpcServer([{ definition: policyV1.PolicyInferenceServiceService, implementation }]);
  return Object.assign(fake, { address: server.address, close: () => server.close() });
}

// ---- fake prm-scoring --------------------------------------------------------------------

const AGGREGATION_NAMES: Record<number, Aggregation> = {
  [commonV1.Aggregation.MIN]: 'min',
  [commonV1.Aggregation.MEAN]: 'mean',
  [commonV1.Aggregation.LAST]: 'last',
  [commonV1.Aggregation.PRODUCT]: 'product',
};

/** The score a fake PRM gives a step: the number after `p=` in it (0.5 when there is none). */
export function stepScore(step: string): number {
  const m = /p=([0-9.]+)/.exec(step);
  return m === null ? 0.5 : Number(m[1]);
}

export interface FakePrm {
  readonly address: string;
  readonly requests: prmV1.ScoreStepsRequest[];
  served: { runId: string; version: number };
  close(): Promise<void>;
}

/** A PrmScoringService on port 0 scoring each step by `stepScore` and aggregating as asked. */
export async function startFakePrm(): Promise<FakePrm> {
  const fake: Omit<FakePrm, 'address' | 'close'> = { requests: [], served: { runId: 'none', version: 0 } };
  const implementation = {
    scoreSteps: (call: grpc.ServerUnaryCall<prmV1.ScoreStepsRequest, prmV1.ScoreStepsResponse>, callback: grpc.sendUnaryData<prmV1.ScoreStepsResponse>) => {
      const req = call.request;
      fake.requests.push(req);
      const how = AGGREGATION_NAMES[req.aggregation];
      if (how === undefined) {
        callback({ code: Status.INVALID_ARGUMENT, details: 'aggregation is unset' });
        return;
      }
      const scores = req.targets.map((t, targetIndex): prmV1.ResponseScore => {
        const steps = splitSteps(t.response).map(stepScore);
        return { targetIndex, promptId: req.prompts[t.promptIndex]?.promptId ?? '', stepScores: steps, aggregateScore: aggregate(steps, how), stepCount: steps.length };
      });
      callback(null, { scores: scores.reverse(), prm: req.prm });
    },
    getModelInfo: (_call: unknown, callback: grpc.sendUnaryData<prmV1.GetModelInfoResponse>) =>
      callback(null, prmV1.GetModelInfoResponse.fromPartial({ prm: { runId: fake.served.runId, kind: commonV1.CheckpointKind.PRM, version: fake.served.version }, executionProvider: 'fake' })),
  };
  const server = await startTestGrpcServer([{ definition: prmV1.PrmScoringServiceService, implementation }]);
  return Object.assign(fake, { address: server.address, close: () => server.close() });
}

// ---- the service under test --------------------------------------------------------------

export interface TempArtifacts {
  readonly root: string;
  readonly store: ArtifactStore;
  cleanup(): Promise<void>;
}

export async function tempArtifacts(): Promise<TempArtifacts> {
  const root = await mkdtemp(join(tmpdir(), 'data-curation-'));
  const store = await createFsArtifactStore({ root });
  return {
    root,
    store,
    async cleanup() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export function testConfig(env: Record<string, string> = {}): DataCurationConfig {
  return loadConfig({ GRPC_PORT: '0', LOG_LEVEL: 'silent', SHUTDOWN_GRACE: '1s', VERSION_WAIT: '5s', PROMPTS_PER_CALL: '2', ...env });
}

export interface Harness {
  readonly bus: EventBus;
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly policy: FakePolicy;
  readonly prm: FakePrm;
  readonly metrics: Metrics;
  readonly service: RunningDataCuration;
  readonly curation: CurationClient;
  /** Every event this harness saw published on the bus, in order. */
  readonly events: eventsV1.Event[];
  readonly progress: CurationProgress[];
  /** Creates a RUNNING run and makes both fakes serve it. */
  startRun(runId: string, spec: ResolvedRunSpec): Promise<void>;
  publish(runId: string, payload: EventPayload): Promise<void>;
  /** The first published event matching, waiting up to 10 s for it. */
  waitFor(match: (e: eventsV1.Event) => boolean, what: string): Promise<eventsV1.Event>;
  /** The value of a counter, summed over the series whose labels include `labels`. */
  metricValue(name: string, labels?: Record<string, string>): Promise<number>;
  /** A second service instance over the same stores and fakes on a fresh bus: a restart after a crash. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface CurationClient {
  listDatasets(req: Partial<curationV1.ListDatasetsRequest>): Promise<curationV1.ListDatasetsResponse>;
  getDataset(req: Partial<curationV1.GetDatasetRequest>): Promise<curationV1.GetDatasetResponse>;
  getPoolCursor(req: Partial<curationV1.GetPoolCursorRequest>): Promise<curationV1.GetPoolCursorResponse>;
  streamRecords(req: Partial<curationV1.StreamDatasetRecordsRequest>): Promise<curationV1.DatasetRecord[]>;
  close(): void;
}

export function curationClient(address: string): CurationClient {
  const raw = createClient(curationV1.DataCurationServiceClient, address, { deadlineMs: 5_000, retry: false });
  const unary = promiseClient(raw);
  return {
    listDatasets: (req) => unary.listDatasets(curationV1.ListDatasetsRequest.fromPartial(req)),
    getDataset: (req) => unary.getDataset(curationV1.GetDatasetRequest.fromPartial(req)),
    getPoolCursor: (req) => unary.getPoolCursor(curationV1.GetPoolCursorRequest.fromPartial(req)),
    async streamRecords(req) {
      const out: curationV1.DatasetRecord[] = [];
      for await (const r of raw.streamDatasetRecords(curationV1.StreamDatasetRecordsRequest.fromPartial(req)) as AsyncIterable<curationV1.StreamDatasetRecordsResponse>) {
        if (r.record !== undefined) out.push(r.record);
      }
      return out;
    },
    close: () => raw.close(),
  };
}

export interface HarnessOptions {
  readonly script: PolicyScript;
  readonly env?: Record<string, string>;
  /** Defaults: a fresh in-process bus, in-memory run store and temp fs artifact store. */
  readonly bus?: EventBus;
  readonly runStore?: RunStore;
  /** Replaces the client of the fake policy (e.g. one to a real policy-inference service). */
  readonly policyApi?: (fake: PolicyApi) => PolicyApi;
  /** The artifact store; a temp fs store by default. */
  readonly artifacts?: TempArtifacts;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const artifactsDir = options.artifacts ?? (await tempArtifacts());
  const runStore = options.runStore ?? createInMemoryRunStore();
  let bus = options.bus ?? createInProcessBus();
  const policy = await startFakePolicy(options.script);
  const prm = await startFakePrm();
  const policyClient = createPolicyClient(policy.address);
  const policyApi = options.policyApi?.(policyClient) ?? policyClient;
  const prmClient = createPrmClient(prm.address);
  // One registry per service instance: a restarted instance starts its counters at zero.
  let metrics = createMetrics({ service: 'data-curation-test', defaultMetrics: false });
  const events: eventsV1.Event[] = [];
  const progress: CurationProgress[] = [];
  const config = testConfig(options.env);
  const start = (): Promise<RunningDataCuration> =>
    startDataCuration({ config, bus, runStore, artifacts: artifactsDir.store, logger: silentLogger, metrics, policy: policyApi, prm: prmClient, onProgress: (e) => progress.push(e) });
  const watch = async (): Promise<Consumer> =>
    bus.consume<eventsV1.Event>({
      durable: 'test-watcher',
      subjects: eventSubjectFilter(),
      decode: (data) => eventsV1.Event.decode(data),
      handler: (e) => {
        events.push(e);
        return Promise.resolve();
      },
    });
  let watcher = await watch();
  let service = await start();
  const curation = curationClient(`127.0.0.1:${service.port}`);
  let curationNow = curation;
  const harness: Harness = {
    get bus() {
      return bus;
    },
    runStore,
    artifacts: artifactsDir.store,
    policy,
    prm,
    get metrics() {
      return metrics;
    },
    get service() {
      return service;
    },
    get curation() {
      return curationNow;
    },
    events,
    progress,
    async startRun(runId, spec) {
      const now = new Date();
      await createRun(runStore, runV1.Run.fromPartial({ runId, spec, state: runV1.RunState.RUNNING, stage: commonV1.Stage.ITERATION, createdAt: now, updatedAt: now }));
      policy.served = { runId, version: 10 };
      prm.served = { runId, version: 0 };
    },
    async publish(runId, payload) {
      const event = createEvent({ runId, payload, source: 'test' });
      await bus.publish(eventSubject(event), eventsV1.Event.encode(event).finish(), { msgId: event.eventId });
    },
    async waitFor(match, what) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = events.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; saw ${events.map((e) => e.eventId).join(', ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async metricValue(name, labels = {}) {
      const metric = metrics.registry.getSingleMetric(name);
      if (metric === undefined) return 0;
      const { values } = await metric.get();
      return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
    },
    async restart() {
      await service.close();
      await watcher.close();
      // A shared bus (JetStream) keeps its durables: the new instance resumes where the old one stopped.
      if (options.bus === undefined) {
        await bus.close();
        bus = createInProcessBus();
      }
      events.length = 0;
      metrics = createMetrics({ service: 'data-curation-test', defaultMetrics: false });
      watcher = await watch();
      service = await start();
      curationNow.close();
      curationNow = curationClient(`127.0.0.1:${service.port}`);
    },
    async close() {
      curationNow.close();
      await service.close();
      await watcher.close();
      if (options.bus === undefined) await bus.close();
      policyClient.close();
      prmClient.close();
      await policy.close();
      await prm.close();
      await runStore.close();
      await artifactsDir.cleanup();
    },
  };
  return harness;
}

export const policyRef = (runId: string, version: number): commonV1.CheckpointRef => ({ runId, kind: commonV1.CheckpointKind.POLICY, version });

export function temperatureSelected(runId: string, iteration: number, temperature: number, version = iteration - 1): EventPayload {
  return {
    $case: 'temperatureSelected',
    value: { iteration, temperature, mode: runV1.TemperatureMode.STATIC, swept: false, sweep: undefined, policy: policyRef(runId, version) },
  };
}

export function warmupPublished(runId: string, version = 0): EventPayload {
  return checkpointPublished(runId, commonV1.CheckpointKind.POLICY, version);
}

export async function cancelRun(runStore: RunStore, runId: string): Promise<void> {
  await updateRun(runStore, runId, (run) => ({ ...run, state: runV1.RunState.CANCELLED }));
}

export { getRun };
