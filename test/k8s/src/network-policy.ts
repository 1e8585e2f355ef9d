import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { K8sObject } from './kustomize.js';
import { allContainers, NAMESPACE, ofKind, selectorMatches, workloads } from './manifests.js';

/** A pod as network policies see it: its labels and its namespace's labels. */
export interface Peer {
  readonly id: string;
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** Ports it listens on (name and number), to resolve named ports in policies. */
  readonly ports: readonly { name?: string; port: number; protocol: 'TCP' | 'UDP' }[];
}

type Rule = NonNullable<NonNullable<INetworkPolicy['spec']>['ingress']>[number];
type PolicyPeer = NonNullable<Rule['from']>[number];
type PolicyPort = NonNullable<Rule['ports']>[number];

/** Namespace labels the API server sets on every namespace (plus the Namespace object's own). */
export function namespaceLabels(name: string, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { ...extra, 'kubernetes.io/metadata.name': name };
}

/** One peer per workload of the render, in the namespace the manifests are applied to. */
export function workloadPeers(objects: readonly K8sObject[]): Peer[] {
  const ns = objects.find((o) => o.kind === 'Namespace' && o.metadata.name === NAMESPACE);
  const nsLabels = namespaceLabels(NAMESPACE, ns?.metadata.labels);
  return workloads(objects).map((w) => ({
    id: w.name,
    namespace: NAMESPACE,
    namespaceLabels: nsLabels,
    labels: w.podLabels,
    ports: allContainers(w.pod).flatMap((c) => (c.ports ?? []).map((p) => ({ name: p.name, port: p.containerPort, protocol: (p.protocol ?? 'TCP') as 'TCP' | 'UDP' }))),
  }));
}

function policiesSelecting(policies: readonly INetworkPolicy[], pod: Peer, direction: 'Ingress' | 'Egress'): INetworkPolicy[] {
  return policies.filter((p) => {
    if ((p.metadata?.namespace ?? NAMESPACE) !== pod.namespace) return false;
    const spec = p.spec!;
    // Without policyTypes a policy is Ingress, plus Egress when it has egress rules.
    const types = spec.policyTypes ?? (spec.egress === undefined ? ['Ingress'] : ['Ingress', 'Egress']);
    return types.includes(direction) && selectorMatches(spec.podSelector, pod.labels);
  });
}

function peerMatches(rulePeer: PolicyPeer, policyNamespace: string, pod: Peer): boolean {
  if (rulePeer.ipBlock !== undefined) return false; // pod traffic is matched by selectors only
  const nsOk = rulePeer.namespaceSelector === undefined ? pod.namespace === policyNamespace : selectorMatches(rulePeer.namespaceSelector, pod.namespaceLabels);
  const podOk = rulePeer.podSelector === undefined || selectorMatches(rulePeer.podSelector, pod.labels);
  return nsOk && podOk;
}

function portMatches(rulePorts: readonly PolicyPort[] | undefined, dest: Peer, port: number, protocol: string): boolean {
  if (rulePorts === undefined || rulePorts.length === 0) return true;
  return rulePorts.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    const first = typeof p.port === 'number' ? p.port : dest.ports.find((x) => x.name === p.port && x.protocol === protocol)?.port;
    return first !== undefined && port >= first && port <= (p.endPort ?? first);
  });
}

function directionAllows(policies: readonly INetworkPolicy[], subject: Peer, other: Peer, dest: Peer, port: number, protocol: string, direction: 'Ingress' | 'Egress'): boolean {
  const selecting = policiesSelecting(policies, subject, direction);
  if (selecting.length === 0) return true; // a pod no policy selects is not isolated
  return selecting.some((policy) => {
    const rules =
      direction === 'Ingress'
        ? (policy.spec?.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
        : (policy.spec?.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
    const policyNamespace = policy.metadata?.namespace ?? NAMESPACE;
    return rules.some(({ peers, ports }) => {
      const peerOk = peers === undefined || peers.length === 0 || peers.some((p) => peerMatches(p, policyNamespace, other));
      return peerOk && portMatches(ports, dest, port, protocol);
    });
  });
}

/** Whether `from` may open a connection to `to` on `port`: egress of the one and ingress of the other. */
export function allowed(objects: readonly K8sObject[], from: Peer, to: Peer, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): boolean {
  const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
  return (
    directionAllows(policies, from, to, to, port, protocol, 'Egress') &&
    directionAllows(policies, to, from, to, port, protocol, 'Ingress')
  );
}

/** Every `from -> to:port/protocol` the policies allow between the given peers, sorted. */
export function allowedPaths(objects: readonly K8sObject[], sources: readonly Peer[], destinations: readonly Peer[]): string[] {
  const out: string[] = [];
  for (const from of sources) {
    for (const to of destinations) {
      if (from.id === to.id) continue;
      for (const { port, protocol } of to.ports) {
        if (allowed(objects, from, to, port, protocol)) out.push(`${from.id} -> ${to.id}:${port}/${protocol}`);
      }
    }
  }
  return out.sort();
}
