import { describe, expect, inject, it } from 'vitest';
import { configuredEdges } from '../src/config-check.js';
import type { K8sObject } from '../src/kustomize.js';
import { ofKind } from '../src/manifests.js';
import { allowedPaths, namespaceLabels, workloadPeers, type Peer } from '../src/network-policy.js';
import { OVERLAYS } from '../src/repo.js';

const renders = inject('renders');

const external = (id: string, namespace: string, labels: Record<string, string>, nsLabels: Record<string, string> = {}, ports: Peer['ports'] = []): Peer => ({
  id,
  namespace,
  namespaceLabels: namespaceLabels(namespace, nsLabels),
  labels,
  ports,
});

const kubeDns = external('kube-dns', 'kube-system', { 'k8s-app': 'kube-dns' }, {}, [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }]);
const prometheus = external('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' });
const teamClient = external('team-client', 'team-a', { app: 'evaluator' }, { 'mstar.io/inference-client': 'true' });
const stranger = external('stranger', 'other', { app: 'anything' });

/** Paths between our pods and these outsiders (outsider to outsider is none of our business). */
function paths(objects: K8sObject[]): string[] {
  const ours = workloadPeers(objects);
  const outsiders = [kubeDns, prometheus, teamClient, stranger];
  return [...allowedPaths(objects, ours, [...ours, kubeDns]), ...allowedPaths(objects, outsiders, ours)].sort();
}

describe.each(OVERLAYS)('network policies of overlays/%s', (overlay) => {
  const objects = renders[`overlays/${overlay}`]!;
  const services = ['balancer', 'data-curation', 'policy-inference', 'prm-scoring', 'trainer'];

  it('allow exactly the connections the services are configured to make, DNS, Prometheus and labelled client namespaces', () => {
    const monitored = ofKind(objects, 'ServiceMonitor').length > 0;
    const expected = [
      // Every address variable (NATS_URL, POLICY_ADDRESS, PRM_ADDRESS) of every service.
      ...configuredEdges(objects).map((e) => `${e.from} -> ${e.to}:${e.port}/TCP`),
      ...workloadPeers(objects).flatMap((p) => [`${p.id} -> kube-dns:53/TCP`, `${p.id} -> kube-dns:53/UDP`]),
      ...(monitored ? services.map((s) => `prometheus -> ${s}:9464/TCP`) : []),
      'team-client -> policy-inference:50051/TCP',
      'team-client -> prm-scoring:50052/TCP',
    ].sort();
    expect(paths(objects)).toEqual(expected);
  });

  it('are what the configuration says: every service to NATS, curation and balancer to the inference services', () => {
    expect(configuredEdges(objects).map((e) => `${e.from} -> ${e.to}:${e.port}`).sort()).toEqual([
      'balancer -> nats:4222',
      'balancer -> policy-inference:50051',
      'balancer -> prm-scoring:50052',
      'data-curation -> nats:4222',
      'data-curation -> policy-inference:50051',
      'data-curation -> prm-scoring:50052',
      'policy-inference -> nats:4222',
      'prm-scoring -> nats:4222',
      'trainer -> nats:4222',
    ]);
  });
});

describe('the network policy evaluator', () => {
  it('allows everything where no policy selects the pods, and nothing under default-deny alone', () => {
    const base = renders.base!;
    const open = paths(base);
    expect(open).toContain('stranger -> nats:4222/TCP');
    expect(open).toContain('trainer -> balancer:50055/TCP');
    const denyOnly = [...base, ...renders['overlays/dev']!.filter((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'default-deny')];
    expect(paths(denyOnly)).toEqual([]);
  });
});
