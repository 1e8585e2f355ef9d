import { defineConfig, string } from '@mstar/config';
import { describe, expect, inject, it } from 'vitest';
import { checkServiceConfig, configExportName, loadServiceConfig, parseTarget, resolveTarget, type ServiceConfig } from '../src/config-check.js';
import type { K8sObject } from '../src/kustomize.js';
import { containerEnv, mainContainer, workloadNamed } from '../src/manifests.js';
import { OVERLAYS, servicePackages } from '../src/repo.js';

const renders = inject('renders');
const packages = await servicePackages();

describe('service configuration in the manifests', () => {
  it('finds the five services under services/', () => {
    // A new service folder makes this fail until it has manifests (and is added here).
    expect(packages.map((p) => p.name)).toEqual(['balancer', 'data-curation', 'policy-inference', 'prm-scoring', 'trainer']);
  });

  describe.each(packages)('$name', (pkg) => {
    let definition: ServiceConfig;

    it(`exports its config definition as ${configExportName(pkg.name)}`, async () => {
      definition = await loadServiceConfig(pkg);
      expect(Object.keys(definition.shape).length).toBeGreaterThan(0);
    });

    it.each(OVERLAYS)('is configured completely and correctly in overlays/%s', async (overlay) => {
      definition ??= await loadServiceConfig(pkg);
      expect(checkServiceConfig(renders[`overlays/${overlay}`]!, pkg.name, definition)).toEqual([]);
    });
  });

  it('points policy-inference and prm-scoring at the same run', () => {
    for (const overlay of OVERLAYS) {
      const objects = renders[`overlays/${overlay}`]!;
      const runIds = ['policy-inference', 'prm-scoring'].map((s) => containerEnv(objects, mainContainer(workloadNamed(objects, s)!)).env.RUN_ID);
      expect(runIds[0], overlay).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);
      expect(runIds[1], overlay).toBe(runIds[0]);
    }
  });
});

describe('the configuration check', () => {
  const dev = (): K8sObject[] => structuredClone(renders['overlays/dev']!);
  const policy = packages.find((p) => p.name === 'policy-inference')!;

  /** The ConfigMap data the given service's container reads first. */
  function configData(objects: K8sObject[], service: string): Record<string, string> {
    const ref = mainContainer(workloadNamed(objects, service)!).envFrom![0]!.configMapRef!.name!;
    return (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === ref) as unknown as { data: Record<string, string> }).data;
  }

  it('fails a service that has no manifests', async () => {
    const definition = await loadServiceConfig(policy);
    const objects = dev().filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] !== 'policy-inference');
    expect(checkServiceConfig(objects, 'policy-inference', definition)).toEqual([
      'policy-inference: no Deployment or StatefulSet labelled app.kubernetes.io/name=policy-inference',
    ]);
  });

  it('fails unknown variables, bad values, wrong ports and missing required ones', async () => {
    const definition = await loadServiceConfig(policy);
    const objects = dev();
    const data = configData(objects, 'policy-inference');
    data.MAX_QUEUUE = '8';
    data.DEVICE = 'tpu';
    data.GRPC_PORT = '50099';
    expect(checkServiceConfig(objects, 'policy-inference', definition)).toEqual([
      'policy-inference: sets MAX_QUEUUE, which its config schema does not read',
      'policy-inference: DEVICE: expected one of cpu, cuda, auto, got "tpu"',
    ]);
    data.DEVICE = 'cpu';
    expect(checkServiceConfig(objects, 'policy-inference', definition)).toContain(
      "policy-inference: GRPC_PORT is 50099 but the container's grpc port is 50051",
    );
  });

  it('fails a pod that would be killed before its drain ends, and threads beyond the CPU limit', async () => {
    const definition = await loadServiceConfig(policy);
    const objects = dev();
    const data = configData(objects, 'policy-inference');
    data.SHUTDOWN_GRACE = '35s';
    data.INTRA_OP_THREADS = '4';
    expect(checkServiceConfig(objects, 'policy-inference', definition)).toEqual([
      'policy-inference: terminationGracePeriodSeconds 40 does not cover SHUTDOWN_GRACE 35 s + 10 s',
      'policy-inference: WORKERS x INTRA_OP_THREADS = 4 threads exceed the CPU limit 2',
    ]);
  });

  it('fails a required variable that is not set', async () => {
    const { shape } = await loadServiceConfig(policy);
    const requiringRunId = defineConfig({ ...shape, RUN_ID: string() });
    const objects = dev();
    expect(checkServiceConfig(objects, 'policy-inference', requiringRunId)).toEqual([]);
    const runConfig = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('mstar-run-')) as unknown as { data: Record<string, string> };
    delete runConfig.data.RUN_ID;
    expect(checkServiceConfig(objects, 'policy-inference', requiringRunId)).toEqual(['policy-inference: required RUN_ID is not set']);
  });

  it('fails an address that leads nowhere', async () => {
    const objects = dev();
    expect(resolveTarget(objects, parseTarget('policy-inference-headless:50051')!)).toEqual({ service: 'policy-inference-headless', workload: 'policy-inference', containerPort: 50051 });
    expect(resolveTarget(objects, parseTarget('dns:///prm-scoring-headless.mstar.svc.cluster.local:50052')!)).toMatchObject({ workload: 'prm-scoring', containerPort: 50052 });
    expect(resolveTarget(objects, parseTarget('nats://nats:4222')!)).toMatchObject({ workload: 'nats', containerPort: 4222 });
    expect(resolveTarget(objects, parseTarget('policy-inference:50052')!)).toBe('Service policy-inference has no port 50052');
    expect(resolveTarget(objects, parseTarget('policy-infrence:50051')!)).toBe('no Service policy-infrence in the render');
    expect(resolveTarget(objects, parseTarget('nats.other:4222')!)).toBe('host nats.other is not a Service of namespace mstar');

    const curation = packages.find((p) => p.name === 'data-curation')!;
    const definition = await loadServiceConfig(curation);
    delete configData(objects, 'data-curation').PRM_ADDRESS;
    // Unset, PRM_ADDRESS falls back to its default, a loopback address: no Service there.
    expect(checkServiceConfig(objects, 'data-curation', definition)).toEqual([
      expect.stringMatching(/^data-curation: PRM_ADDRESS=(localhost:50052: no Service localhost in the render|127\.0\.0\.1:50052: host 127\.0\.0\.1 is not a Service of namespace mstar)$/),
    ]);
  });
});
