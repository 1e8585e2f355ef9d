import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import type { K8sObject } from '../src/kustomize.js';
import { NAMESPACE } from '../src/manifests.js';
import { componentNames, K8S_DIR, OVERLAYS } from '../src/repo.js';
import { validateObject } from '../src/schemas.js';

const renders = new Map(Object.entries(inject('renders')));
let components: string[] = [];

beforeAll(async () => {
  components = await componentNames();
});

describe('kustomize renders', () => {
  it('renders the base, every overlay and every component on its own', () => {
    expect([...renders.keys()]).toEqual(['base', 'overlays/dev', 'overlays/gpu', ...components.map((c) => `base + ${c}`)]);
    expect(components).toEqual(['autoscaling', 'gpu', 'monitoring', 'network-policies']);
    for (const [label, objects] of renders) expect(objects.length, label).toBeGreaterThan(20);
  });

  it('uses every component in at least one overlay', async () => {
    const used = new Set<string>();
    for (const overlay of OVERLAYS) {
      const kustomization = parse(await readFile(join(K8S_DIR, 'overlays', overlay, 'kustomization.yaml'), 'utf8')) as { components?: string[] };
      for (const c of kustomization.components ?? []) used.add(c.replace('../../components/', ''));
    }
    expect([...used].sort()).toEqual(components);
  });

  it('validates every object against the Kubernetes, KEDA and Prometheus Operator schemas, unknown fields included', () => {
    for (const [label, objects] of renders) {
      expect(objects.flatMap(validateObject), label).toEqual([]);
    }
  });

  it('puts every namespaced object in the mstar namespace, and names each object once', () => {
    for (const [label, objects] of renders) {
      const outside = objects.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== NAMESPACE).map((o) => `${o.kind}/${o.metadata.name}`);
      expect(outside, label).toEqual([]);
      const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(ids.filter((id, i) => ids.indexOf(id) !== i), label).toEqual([]);
    }
  });
});

describe('the schema check', () => {
  const deployment = (): K8sObject => structuredClone(renders.get('overlays/dev')!.find((o) => o.kind === 'Deployment')!);

  it('accepts a rendered Deployment as it is', () => {
    expect(validateObject(deployment())).toEqual([]);
  });

  it('rejects an unknown field anywhere, naming its path', () => {
    const d = deployment() as K8sObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } }; bogus?: number } };
    d.spec.template.spec.containers[0]!.imagePullPolcy = 'Always';
    d.spec.bogus = 1;
    expect(validateObject(d)).toEqual([
      `Deployment/${d.metadata.name}: unknown field /spec/template/spec/containers/0/imagePullPolcy`,
      `Deployment/${d.metadata.name}: unknown field /spec/bogus`,
    ]);
  });

  it('rejects wrong types and missing required fields', () => {
    const d = deployment() as K8sObject & { spec: { replicas: unknown; selector?: unknown } };
    d.spec.replicas = 'two';
    delete d.spec.selector;
    const [problem] = validateObject(d);
    expect(problem).toContain('must have required property selector');
    expect(problem).toContain('data/spec/replicas must be integer');
  });

  it('rejects unknown fields in custom resources and kinds it has no schema for', () => {
    const scaled = structuredClone(renders.get('overlays/gpu')!.find((o) => o.kind === 'ScaledObject')!) as K8sObject & { spec: Record<string, unknown> };
    scaled.spec.minReplicas = 2; // HPA spelling; KEDA's is minReplicaCount
    expect(validateObject(scaled)).toEqual(['ScaledObject/policy-inference: unknown field /spec/minReplicas']);
    expect(validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual(['Widget/w: no schema for example.com/v1 Widget']);
  });
});
