import { LIVENESS_HEALTH_NAME } from '@mstar/grpc';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IService } from 'kubernetes-models/v1';
import { describe, expect, inject, it } from 'vitest';
import { allContainers, containerEnv, mainContainer, NAME_LABEL, ofKind, quantity, selectorMatches, serviceSelects, workloads, type Workload } from '../src/manifests.js';
import type { K8sObject } from '../src/kustomize.js';
import { OVERLAYS, type Overlay } from '../src/repo.js';

const renders = inject('renders');
const rendered = (overlay: Overlay): K8sObject[] => renders[`overlays/${overlay}`]!;

const SERVICES = ['policy-inference', 'prm-scoring', 'data-curation', 'trainer', 'balancer'];
const INFERENCE = ['policy-inference', 'prm-scoring'];
const GPU_SERVICES = ['policy-inference', 'prm-scoring', 'trainer'];
/** Who may write the artifact volume: checkpoints (trainer), datasets and PRM data (data-curation), run outputs (balancer). */
const ARTIFACT_WRITERS = ['trainer', 'data-curation', 'balancer'];

const serviceWorkloads = (objects: K8sObject[]): Workload[] => workloads(objects).filter((w) => SERVICES.includes(w.name));
const grpcPort = (w: Workload): number => mainContainer(w).ports!.find((p) => p.name === 'grpc')!.containerPort;

/** The replicas a workload runs at least: its spec, or the floor of the autoscaler that owns it. */
function minReplicas(objects: K8sObject[], w: Workload): number | undefined {
  const hpa = ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler').find((h) => h.spec?.scaleTargetRef.name === w.name);
  const scaled = ofKind<IScaledObject>(objects, 'ScaledObject').find((s) => s.spec?.scaleTargetRef.name === w.name);
  return w.replicas ?? hpa?.spec?.minReplicas ?? scaled?.spec?.minReplicaCount;
}

describe.each(OVERLAYS)('overlays/%s', (overlay) => {
  const objects = rendered(overlay);

  it('runs each of the five services as one workload with a Service whose port `grpc` reaches it', () => {
    expect(serviceWorkloads(objects).map((w) => w.name).sort()).toEqual([...SERVICES].sort());
    for (const w of serviceWorkloads(objects)) {
      const service = ofKind<IService>(objects, 'Service').find((s) => s.metadata?.name === w.name);
      expect(service, w.name).toBeDefined();
      expect(serviceSelects(service!, w.podLabels), w.name).toBe(true);
      expect(service!.spec?.ports?.find((p) => p.name === 'grpc'), w.name).toMatchObject({ port: grpcPort(w), targetPort: 'grpc' });
    }
    for (const name of INFERENCE) {
      const headless = ofKind<IService>(objects, 'Service').find((s) => s.metadata?.name === `${name}-headless`);
      expect(headless?.spec?.clusterIP, name).toBe('None');
    }
  });

  it('probes every service with native gRPC health: liveness and startup on "liveness", readiness on ""', () => {
    for (const w of serviceWorkloads(objects)) {
      const c = mainContainer(w);
      const port = grpcPort(w);
      expect(c.readinessProbe?.grpc, w.name).toEqual({ port });
      expect(c.livenessProbe?.grpc, w.name).toEqual({ port, service: LIVENESS_HEALTH_NAME });
      expect(c.startupProbe?.grpc, w.name).toEqual({ port, service: LIVENESS_HEALTH_NAME });
      // Model services load ONNX Runtime workers before they answer at all: give them 5 minutes.
      const startupSeconds = (c.startupProbe!.periodSeconds ?? 10) * (c.startupProbe!.failureThreshold ?? 3);
      expect(startupSeconds, w.name).toBeGreaterThanOrEqual(GPU_SERVICES.includes(w.name) ? 300 : 120);
    }
  });

  it('probes NATS on its monitoring endpoint', () => {
    const nats = mainContainer(workloads(objects).find((w) => w.name === 'nats')!);
    for (const probe of [nats.startupProbe, nats.livenessProbe, nats.readinessProbe]) expect(probe?.httpGet?.port).toBe('monitor');
  });

  it('gives every container, init containers included, CPU and memory requests and limits', () => {
    for (const w of workloads(objects)) {
      for (const c of allContainers(w.pod)) {
        for (const resource of ['cpu', 'memory'] as const) {
          const request = quantity(c.resources?.requests?.[resource]);
          const limit = quantity(c.resources?.limits?.[resource]);
          expect(request, `${w.name}/${c.name} ${resource} request`).toBeGreaterThan(0);
          expect(limit, `${w.name}/${c.name} ${resource} limit`).toBeGreaterThanOrEqual(request);
        }
      }
    }
  });

  it('runs every container as non-root with a read-only root filesystem, no capabilities and RuntimeDefault seccomp', () => {
    for (const w of workloads(objects)) {
      expect(w.pod.securityContext, w.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(w.pod.securityContext?.runAsUser, w.name).toBeGreaterThan(0);
      expect(w.pod.hostNetwork ?? false, w.name).toBe(false);
      expect(w.pod.automountServiceAccountToken, w.name).toBe(false);
      expect(w.pod.enableServiceLinks, w.name).toBe(false);
      for (const c of allContainers(w.pod)) {
        expect(c.securityContext, `${w.name}/${c.name}`).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
        });
      }
    }
  });

  it('gives the services a writable /tmp and the artifact volume, read-only where they only read', () => {
    for (const w of serviceWorkloads(objects)) {
      const mounts = mainContainer(w).volumeMounts ?? [];
      const tmp = mounts.find((m) => m.mountPath === '/tmp');
      expect(w.pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, w.name).toBeDefined();
      const artifacts = mounts.find((m) => m.mountPath === containerEnv(objects, mainContainer(w)).env.ARTIFACT_DIR);
      expect(w.pod.volumes?.find((v) => v.name === artifacts?.name)?.persistentVolumeClaim?.claimName, w.name).toBe('mstar-artifacts');
      expect(artifacts?.readOnly ?? false, w.name).toBe(!ARTIFACT_WRITERS.includes(w.name));
    }
  });

  it('runs the trainer as a single writer that cannot run twice and that nothing scales', () => {
    const trainer = workloads(objects).find((w) => w.name === 'trainer')!;
    expect(trainer.kind).toBe('StatefulSet');
    expect(trainer.replicas).toBe(1);
    const targets = [
      ...ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler').map((h) => h.spec?.scaleTargetRef.name),
      ...ofKind<IScaledObject>(objects, 'ScaledObject').map((s) => s.spec?.scaleTargetRef.name),
    ];
    expect(targets).not.toContain('trainer');
    expect(ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').filter((p) => selectorMatches(p.spec?.selector, trainer.podLabels))).toEqual([]);
  });

  it('keeps the inference services available through voluntary disruptions', () => {
    const pdbs = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget');
    for (const name of INFERENCE) {
      const w = workloads(objects).find((x) => x.name === name)!;
      const covering = pdbs.filter((p) => selectorMatches(p.spec?.selector, w.podLabels));
      expect(covering.map((p) => p.spec?.maxUnavailable), name).toEqual([1]);
      // The budget selects this workload's pods only.
      for (const other of workloads(objects).filter((x) => x.name !== name)) expect(selectorMatches(covering[0]!.spec?.selector, other.podLabels)).toBe(false);
    }
  });

  it('gives GPUs, GPU nodes, the GPU image and DEVICE=cuda to the model services of the gpu overlay only', () => {
    const gpuWanted = overlay === 'gpu' ? GPU_SERVICES : [];
    for (const w of workloads(objects)) {
      const wants = gpuWanted.includes(w.name);
      for (const c of allContainers(w.pod)) {
        const gpus = c.resources?.limits?.['nvidia.com/gpu'];
        expect(gpus, `${w.name}/${c.name}`).toBe(wants && c === mainContainer(w) ? '1' : undefined);
        expect(c.resources?.requests?.['nvidia.com/gpu'], `${w.name}/${c.name}`).toBeUndefined();
      }
      expect(w.pod.nodeSelector?.['nvidia.com/gpu.present'], w.name).toBe(wants ? 'true' : undefined);
      expect(w.pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu') ?? false, w.name).toBe(wants);
      if (!SERVICES.includes(w.name)) continue;
      const { env } = containerEnv(objects, mainContainer(w));
      if ('DEVICE' in env) expect(env.DEVICE, w.name).toBe(wants ? 'cuda' : 'cpu');
      else expect(wants, `${w.name} gets a GPU but has no DEVICE`).toBe(false);
      for (const c of allContainers(w.pod)) expect(c.image, `${w.name}/${c.name}`).toMatch(new RegExp(`^mstar/${w.name}${wants ? '-gpu' : ''}:`));
    }
  });

  it('pins every image to a tag other than latest', () => {
    for (const w of workloads(objects)) {
      for (const c of allContainers(w.pod)) expect(c.image, `${w.name}/${c.name}`).toMatch(/^[^:@]+(:(?!latest$)[\w.-]+|@sha256:[0-9a-f]{64})$/);
    }
  });
});

describe('replicas', () => {
  it('dev runs one replica of everything and no autoscaler', () => {
    const objects = rendered('dev');
    expect(workloads(objects).map((w) => [w.name, w.replicas])).toEqual(workloads(objects).map((w) => [w.name, 1]));
    expect([...ofKind(objects, 'HorizontalPodAutoscaler'), ...ofKind(objects, 'ScaledObject')]).toEqual([]);
  });

  it('gpu runs at least 2 replicas of each inference service, each owned by one autoscaler, and a single trainer', () => {
    const objects = rendered('gpu');
    for (const name of INFERENCE) {
      const w = workloads(objects).find((x) => x.name === name)!;
      expect(minReplicas(objects, w), name).toBeGreaterThanOrEqual(2);
      // An autoscaled Deployment leaves spec.replicas to its autoscaler, so `kubectl apply` never resets it.
      expect(w.replicas, name).toBeUndefined();
    }
    const targets = [
      ...ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler').map((h) => h.spec?.scaleTargetRef),
      ...ofKind<IScaledObject>(objects, 'ScaledObject').map((s) => s.spec?.scaleTargetRef),
    ];
    expect(targets.map((t) => t?.name).sort()).toEqual([...INFERENCE].sort());
    for (const t of targets) expect(workloads(objects).find((w) => w.name === t?.name)?.kind).toBe(t?.kind ?? 'Deployment');
    expect(workloads(objects).filter((w) => !INFERENCE.includes(w.name)).map((w) => [w.name, w.replicas])).toEqual(
      workloads(objects).filter((w) => !INFERENCE.includes(w.name)).map((w) => [w.name, 1]),
    );
    expect(workloads(objects).every((w) => w.podLabels[NAME_LABEL] === w.name)).toBe(true);
  });
});
