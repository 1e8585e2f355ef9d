import { ConfigError, describeConfig, type ConfigDefinition, type ConfigShape } from '@mstar/config';
import type { IService } from 'kubernetes-models/v1';
import type { K8sObject } from './kustomize.js';
import { containerEnv, mainContainer, NAMESPACE, named, quantity, serviceSelects, workloadNamed, workloads, type Workload } from './manifests.js';
import type { ServicePackage } from './repo.js';

export type ServiceConfig = ConfigDefinition<ConfigShape>;

/** `policy-inference` -> `policyInferenceConfig`: the name each service package exports its definition under. */
export function configExportName(service: string): string {
  return `${service.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}Config`;
}

/** Imports a service package and returns its config definition. */
export async function loadServiceConfig(pkg: ServicePackage): Promise<ServiceConfig> {
  const exportName = configExportName(pkg.name);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pkg.packageName)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`services/${pkg.name}: cannot import ${pkg.packageName} (${(err as Error).message.split('\n')[0]})`);
  }
  const definition = mod[exportName] as Partial<ServiceConfig> | undefined;
  if (typeof definition?.loadConfig !== 'function' || typeof definition.shape !== 'object') {
    throw new Error(`services/${pkg.name}: ${pkg.packageName} does not export its config definition as ${exportName}`);
  }
  return definition as ServiceConfig;
}

/** Variables that name a peer: `*_ADDR`, `*_ADDRESS` (gRPC targets) and `*_URL` (NATS). */
export function isAddressVariable(name: string): boolean {
  return /_(ADDR|ADDRESS|URL)$/.test(name);
}

export interface Target {
  readonly host: string;
  readonly port: number;
}

const DEFAULT_URL_PORTS: Readonly<Record<string, number>> = { 'nats:': 4222, 'tls:': 4222 };

/** `host:port`, a grpc-js `dns:///host:port` target or a `nats://host:port` URL. */
export function parseTarget(value: string): Target | undefined {
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^/]/.test(value) && URL.canParse(value) ? new URL(value) : undefined;
  if (url !== undefined && url.protocol !== 'dns:') {
    const port = url.port === '' ? DEFAULT_URL_PORTS[url.protocol] : Number(url.port);
    return port === undefined ? undefined : { host: url.hostname, port };
  }
  const hostPort = value.replace(/^dns:(\/\/[^/]*\/)?/, '');
  const match = /^([A-Za-z0-9_.-]+):(\d+)$/.exec(hostPort);
  return match ? { host: match[1]!, port: Number(match[2]) } : undefined;
}

export interface ResolvedTarget {
  readonly service: string;
  readonly workload: string;
  /** The container port the Service forwards to. */
  readonly containerPort: number;
}

/**
 * Follows a target to the workload behind it: the host must be a Service of the render (short name,
 * or `<service>.mstar[.svc[.cluster.local]]`), the port one of its ports, and the Service must
 * select a workload whose container listens on the target port.
 */
export function resolveTarget(objects: readonly K8sObject[], target: Target): ResolvedTarget | string {
  const [serviceName, namespace, ...rest] = target.host.split('.');
  if (namespace !== undefined && (namespace !== NAMESPACE || !['', 'svc', 'svc.cluster.local'].includes(rest.join('.')))) {
    return `host ${target.host} is not a Service of namespace ${NAMESPACE}`;
  }
  const service = named<IService>(objects, 'Service', serviceName!);
  if (service === undefined) return `no Service ${serviceName} in the render`;
  const servicePort = service.spec?.ports?.find((p) => p.port === target.port);
  if (servicePort === undefined) return `Service ${serviceName} has no port ${target.port}`;
  const selected = workloads(objects).filter((w) => serviceSelects(service, w.podLabels));
  if (selected.length !== 1) return `Service ${serviceName} selects ${selected.length} workloads, expected 1`;
  const workload = selected[0]!;
  const wanted = servicePort.targetPort ?? servicePort.port;
  const containerPort = workload.pod.containers
    .flatMap((c) => c.ports ?? [])
    .find((p) => (typeof wanted === 'number' ? p.containerPort === wanted : p.name === wanted));
  if (containerPort === undefined) return `Service ${serviceName} forwards to port ${wanted}, which no container of ${workload.name} exposes`;
  return { service: serviceName!, workload: workload.name, containerPort: containerPort.containerPort };
}

/**
 * Every problem with one service's configuration in a render: no workload for it, variables set
 * that its schema does not read, required ones missing, values its schema rejects, addresses that
 * do not lead to a listening workload of the render, and GRPC_PORT / METRICS_PORT that are not
 * the container's `grpc` / `metrics` ports.
 */
export function checkServiceConfig(objects: readonly K8sObject[], service: string, definition: ServiceConfig): string[] {
  const workload = workloadNamed(objects, service);
  if (workload === undefined) return [`${service}: no Deployment or StatefulSet labelled app.kubernetes.io/name=${service}`];
  const container = mainContainer(workload);
  const { env, problems } = containerEnv(objects, container);
  const variables = describeConfig(definition);
  const known = new Set(variables.map((v) => v.name));
  for (const name of Object.keys(env).sort()) {
    if (!known.has(name)) problems.push(`${service}: sets ${name}, which its config schema does not read`);
  }
  for (const v of variables) {
    if (v.presence === 'required' && (env[v.name] ?? '') === '') problems.push(`${service}: required ${v.name} is not set`);
  }
  let config: Readonly<Record<string, unknown>>;
  try {
    config = definition.loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [...problems, ...err.problems.filter((p) => p.problem !== 'required but not set').map((p) => `${service}: ${p.variable}: ${p.problem}`)];
  }
  for (const v of variables.filter((x) => isAddressVariable(x.name))) {
    const value = config[v.name];
    if (typeof value !== 'string') continue;
    const target = parseTarget(value);
    const resolved = target === undefined ? `cannot parse ${JSON.stringify(value)}` : resolveTarget(objects, target);
    if (typeof resolved === 'string') problems.push(`${service}: ${v.name}=${value}: ${resolved}`);
  }
  problems.push(...portProblems(service, workload, config), ...runtimeProblems(service, workload, config));
  return problems;
}

/** What the drain after SIGTERM leaves to close consumers, workers and connections. */
export const CLOSE_ALLOWANCE_MS = 10_000;

/**
 * The pod must outlive the drain (SHUTDOWN_GRACE plus the time to close the rest), and ONNX
 * Runtime's threads (WORKERS x INTRA_OP_THREADS) must fit the CPU limit, or they fight over the
 * throttled quota.
 */
function runtimeProblems(service: string, workload: Workload, config: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  const grace = config.SHUTDOWN_GRACE;
  const podGraceMs = (workload.pod.terminationGracePeriodSeconds ?? 30) * 1000;
  if (typeof grace === 'number' && podGraceMs < grace + CLOSE_ALLOWANCE_MS) {
    out.push(`${service}: terminationGracePeriodSeconds ${podGraceMs / 1000} does not cover SHUTDOWN_GRACE ${grace / 1000} s + ${CLOSE_ALLOWANCE_MS / 1000} s`);
  }
  const threads = config.INTRA_OP_THREADS;
  if (typeof threads === 'number') {
    const workers = typeof config.WORKERS === 'number' ? config.WORKERS : 1;
    const cpuLimit = quantity(mainContainer(workload).resources?.limits?.cpu);
    if (!(workers * threads <= cpuLimit)) out.push(`${service}: WORKERS x INTRA_OP_THREADS = ${workers * threads} threads exceed the CPU limit ${cpuLimit}`);
  }
  return out;
}

function portProblems(service: string, workload: Workload, config: Readonly<Record<string, unknown>>): string[] {
  const ports = mainContainer(workload).ports ?? [];
  const out: string[] = [];
  for (const [variable, portName] of [['GRPC_PORT', 'grpc'], ['METRICS_PORT', 'metrics']] as const) {
    const value = config[variable];
    if (typeof value !== 'number') continue;
    const containerPort = ports.find((p) => p.name === portName)?.containerPort;
    if (containerPort !== value) out.push(`${service}: ${variable} is ${value} but the container's ${portName} port is ${String(containerPort)}`);
  }
  return out;
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly port: number;
}

/**
 * The connections the services' configuration asks for: one per address variable (NATS_URL,
 * POLICY_ADDRESS, ...) of every workload, to the workload and container port behind it. This is
 * what the network policies must allow, and all they may allow inside the namespace.
 */
export function configuredEdges(objects: readonly K8sObject[]): Edge[] {
  const edges: Edge[] = [];
  for (const workload of workloads(objects)) {
    const { env } = containerEnv(objects, mainContainer(workload));
    for (const [name, value] of Object.entries(env)) {
      if (!isAddressVariable(name)) continue;
      const target = parseTarget(value);
      const resolved = target === undefined ? undefined : resolveTarget(objects, target);
      if (resolved === undefined || typeof resolved === 'string') throw new Error(`${workload.name}: ${name}=${value} does not resolve: ${String(resolved)}`);
      edges.push({ from: workload.name, to: resolved.workload, port: resolved.containerPort });
    }
  }
  return edges;
}
