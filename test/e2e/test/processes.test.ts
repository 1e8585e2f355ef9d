import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRunControl, type RunControl } from '@mstar/cli';
import { EVENT_STREAM, EVENT_STREAM_SUBJECTS, eventSubjectFilter, eventsV1, runV1 } from '@mstar/contracts';
import { createJetStreamBus, type EventBus } from '@mstar/events';
import { parseRunSpec, runArtifacts } from '@mstar/runspec';
import { freePort, startNatsServer, type NatsServerHandle } from '@mstar/testing';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countEvents, EXPECTED_EVENTS_2_ITERATIONS, hashTree, startServiceProcess, TINY_SPEC, type ServiceProcess } from './fixture.js';

const SERVICES = ['policy-inference', 'prm-scoring', 'trainer', 'data-curation', 'balancer'] as const;
type ServiceName = (typeof SERVICES)[number];

let nats: NatsServerHandle;
let artifactDir: string;
let observer: EventBus;
const spec = parseRunSpec(readFileSync(TINY_SPEC, 'utf8'));

beforeAll(async () => {
  nats = await startNatsServer();
  artifactDir = await mkdtemp(join(tmpdir(), 'mstar-e2e-'));
  observer = await createJetStreamBus({ servers: nats.url, stream: { name: EVENT_STREAM, subjects: [EVENT_STREAM_SUBJECTS] } });
});

afterAll(async () => {
  await observer.close();
  await nats.stop();
  await rm(artifactDir, { recursive: true, force: true });
});

/** The five services of one run as separate processes, sharing the nats-server and the artifact folder. */
async function startServices(runId: string) {
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()] as const))) as Record<ServiceName, number>;
  const envOf = (name: ServiceName): Record<string, string> => ({
    GRPC_PORT: String(ports[name]),
    METRICS_PORT: '0',
    NATS_URL: nats.url,
    ARTIFACT_DIR: artifactDir,
    RUN_BUCKET: 'e2e-runs',
    RUN_ID: runId,
    POLICY_ADDRESS: `127.0.0.1:${ports['policy-inference']}`,
    PRM_ADDRESS: `127.0.0.1:${ports['prm-scoring']}`,
    ...(name === 'trainer' || name === 'policy-inference' || name === 'prm-scoring' ? { INTRA_OP_THREADS: '1' } : {}),
  });
  const running = new Map<ServiceName, ServiceProcess>(SERVICES.map((s) => [s, startServiceProcess(s, envOf(s))]));
  const control = connectRunControl(`127.0.0.1:${ports.balancer}`);
  return {
    control,
    get: (name: ServiceName): ServiceProcess => running.get(name)!,
    restart(name: ServiceName): void {
      running.set(name, startServiceProcess(name, envOf(name)));
    },
    logs: (): string => [...running.values()].map((p) => `--- ${p.name}\n${p.tail()}`).join('\n'),
    async stop(): Promise<void> {
      control.close();
      await Promise.all([...running.values()].map((p) => p.stop()));
    },
  };
}

/** Every event of one run, as a separate JetStream consumer sees them. */
async function observe(runId: string) {
  const events: eventsV1.Event[] = [];
  const listeners: ((e: eventsV1.Event) => void)[] = [];
  const consumer = await observer.consume<eventsV1.Event>({
    durable: `observer-${runId}`,
    subjects: eventSubjectFilter({ runId }),
    decode: (data) => eventsV1.Event.decode(data),
    handler: (event) => {
      events.push(event);
      listeners.forEach((l) => l(event));
      return Promise.resolve();
    },
  });
  return {
    events,
    onEvent: (l: (e: eventsV1.Event) => void) => listeners.push(l),
    close: () => consumer.close(),
  };
}

/** How long a run may take before the test gives up with the services' logs (before vitest's 300 s). */
const RUN_DEADLINE_MS = 270_000;

/** Starts the run once the balancer answers, then follows WatchRun to the terminal record. */
async function runToEnd(control: RunControl, runId: string, logs: () => string): Promise<runV1.Run> {
  const deadline = Date.now() + RUN_DEADLINE_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await control.startRun(spec, { runId, idempotencyKey: runId });
      break;
    } catch (error) {
      if (attempt > 120) throw new Error(`balancer never accepted the run: ${String(error)}\n${logs()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  let last: runV1.Run | undefined;
  const watched = (async () => {
    for await (const update of control.watchRun(runId)) if (update.run !== undefined) last = update.run;
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run ${runId} still ${last === undefined ? 'without a run record' : runV1.runStateToJSON(last.state)} after ${RUN_DEADLINE_MS / 1000} s\n${logs()}`)), deadline - Date.now());
  });
  // Once the deadline has passed, stopping the services ends the watch; that error is not the news.
  watched.catch(() => undefined);
  try {
    await Promise.race([watched, late]);
  } finally {
    clearTimeout(timer);
  }
  if (last?.state !== runV1.RunState.SUCCEEDED) throw new Error(`run ${runId} ended ${JSON.stringify(last && runV1.Run.toJSON(last))}\n${logs()}`);
  return last;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/** The run's datasets, PRM data and weights with the run id written out, for comparing two runs byte for byte. */
async function outputs(runId: string): Promise<Map<string, string>> {
  const root = join(artifactDir, runArtifacts(runId).root);
  const all = await hashTree(root, (_p, text) => text.replaceAll(runId, '<run>'));
  return new Map([...all].filter(([p]) => p.endsWith('.jsonl') || p.endsWith('.safetensors')));
}

describe('five services as separate processes over a real nats-server', () => {
  let clean: Map<string, string>;

  it('runs the tiny spec to the end with every event, dataset and checkpoint', async () => {
    const runId = 'e2e-clean';
    const seen = await observe(runId);
    const services = await startServices(runId);
    try {
      const run = await runToEnd(services.control, runId, services.logs);
      expect(run.summary.map((s) => s.iteration)).toEqual([0, 1, 2]);
      expect(run.summary.every((s) => s.greedyAccuracyInDomain !== undefined && s.greedyAccuracyOutOfDomain !== undefined)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(countEvents(seen.events)).toEqual(EXPECTED_EVENTS_2_ITERATIONS);
      const selected = seen.events.flatMap((e) => (e.payload?.$case === 'temperatureSelected' ? [e.payload.value] : []));
      expect(selected.map((t) => t.iteration)).toEqual([1, 2]);
      expect(selected.every((t) => [0.7, 1].includes(t.temperature) && t.swept && t.sweep?.rows.length === 2)).toBe(true);
      const datasets = seen.events.flatMap((e) => (e.payload?.$case === 'datasetReady' ? [e.payload.value.dataset!] : []));
      expect(datasets.map((d) => [d.iteration, d.promptsTried, d.samplesGenerated, d.policy?.version])).toEqual([
        [1, 12, 48, 0],
        [2, 12, 48, 1],
      ]);
      const a = runArtifacts(runId);
      for (const key of [a.policyCheckpoint(0), a.policyCheckpoint(1), a.policyCheckpoint(2), a.prmCheckpoint(0)]) {
        expect(await exists(join(artifactDir, a.complete(key))), key).toBe(true);
      }
      for (const key of [a.prmData, a.dataset(1), a.dataset(2)]) expect(await exists(join(artifactDir, a.complete(key))), key).toBe(true);
      clean = await outputs(runId);
      expect([...clean.keys()].filter((p) => p.endsWith('.jsonl')).sort()).toEqual(['datasets/iteration-1.jsonl', 'datasets/iteration-2.jsonl', 'prm-data.jsonl']);
    } finally {
      await seen.close();
      await services.stop();
    }
  }, 300_000);

  it('survives data-curation killed in the middle of a dataset: same datasets, same weights', async () => {
    const runId = 'e2e-crash';
    const seen = await observe(runId);
    const services = await startServices(runId);
    const a = runArtifacts(runId);
    let killedMidStage: boolean | undefined;
    seen.onEvent((event) => {
      if (event.payload?.$case !== 'temperatureSelected' || event.payload.value.iteration !== 1 || killedMidStage !== undefined) return;
      killedMidStage = false;
      void services
        .get('data-curation')
        .kill()
        .then(async () => {
          // The kill only counts if iteration 1's dataset was not complete yet.
          killedMidStage = !(await exists(join(artifactDir, a.complete(a.dataset(1)))));
          services.restart('data-curation');
        });
    });
    try {
      await runToEnd(services.control, runId, services.logs);
      expect(killedMidStage).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(countEvents(seen.events)).toEqual(EXPECTED_EVENTS_2_ITERATIONS);
      expect(await outputs(runId)).toEqual(clean);
    } finally {
      await seen.close();
      await services.stop();
    }
  }, 300_000);
});
