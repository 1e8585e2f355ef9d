import type { IDeployment, IStatefulSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer, IPodSpec, IService } from 'kubernetes-models/v1';
import type { K8sObject } from './kustomize.js';

export type LabelSelector = NonNullable<IDeployment['spec']>['selector'];

export const NAME_LABEL = 'app.kubernetes.io/name';
export const NAMESPACE = 'mstar';

/** A Deployment or StatefulSet, with what the checks read from it. */
export interface Workload {
  readonly kind: 'Deployment' | 'StatefulSet';
  readonly name: string;
  readonly object: IDeployment | IStatefulSet;
  /** `spec.replicas` as rendered (undefined when an autoscaler owns it). */
  readonly replicas: number | undefined;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly pod: IPodSpec;
}

export function ofKind<T = K8sObject>(objects: readonly K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

export function named<T = K8sObject>(objects: readonly K8sObject[], kind: string, name: string): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name) as T | undefined;
}

export function workloads(objects: readonly K8sObject[]): Workload[] {
  return objects
    .filter((o): o is K8sObject & (IDeployment | IStatefulSet) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((object) => ({
      kind: object.kind,
      name: object.metadata.name,
      object,
      replicas: object.spec?.replicas,
      podLabels: object.spec?.template.metadata?.labels ?? {},
      pod: object.spec?.template.spec ?? { containers: [] },
    }));
}

/** The workload labelled app.kubernetes.io/name=`name`. */
export function workloadNamed(objects: readonly K8sObject[], name: string): Workload | undefined {
  return workloads(objects).find((w) => w.podLabels[NAME_LABEL] === name);
}

/** The container of a workload that runs the service: the one named like the workload. */
export function mainContainer(workload: Workload): IContainer {
  const container = workload.pod.containers.find((c) => c.name === workload.name);
  if (container === undefined) throw new Error(`${workload.kind}/${workload.name} has no container named ${workload.name}`);
  return container;
}

/** Init and regular containers of a pod. */
export function allContainers(pod: IPodSpec): IContainer[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

/** Stand-ins for downward-API values, which only exist in a running pod. */
const FIELD_REF_EXAMPLES: Readonly<Record<string, string>> = {
  'metadata.name': 'pod-0',
  'metadata.namespace': NAMESPACE,
  'status.podIP': '10.0.0.1',
  'spec.nodeName': 'node-0',
};

export interface ResolvedEnv {
  /** Every variable the container gets, by name (ConfigMap keys, literal values, downward API). */
  readonly env: Record<string, string>;
  /** References that cannot be resolved in the render (a ConfigMap that is not there, ...). */
  readonly problems: string[];
}

/** The environment a container starts with, as Kubernetes would assemble it from the render. */
export function containerEnv(objects: readonly K8sObject[], container: IContainer): ResolvedEnv {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef?.name;
    if (ref === undefined) {
      problems.push(`${container.name}: envFrom other than a configMapRef`);
      continue;
    }
    const configMap = named<IConfigMap>(objects, 'ConfigMap', ref);
    if (configMap === undefined) {
      problems.push(`${container.name}: envFrom ConfigMap ${ref} is not in the render`);
      continue;
    }
    Object.assign(env, configMap.data ?? {});
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (variable.valueFrom?.fieldRef !== undefined) {
      const example = FIELD_REF_EXAMPLES[variable.valueFrom.fieldRef.fieldPath];
      if (example === undefined) problems.push(`${container.name}: ${variable.name} from an unsupported fieldRef ${variable.valueFrom.fieldRef.fieldPath}`);
      else env[variable.name] = example;
    } else if (variable.valueFrom?.configMapKeyRef !== undefined) {
      const { name, key } = variable.valueFrom.configMapKeyRef;
      const value = named<IConfigMap>(objects, 'ConfigMap', name ?? '')?.data?.[key];
      if (value === undefined) problems.push(`${container.name}: ${variable.name} refers to ConfigMap ${name} key ${key}, which is not in the render`);
      else env[variable.name] = value;
    } else {
      problems.push(`${container.name}: ${variable.name} has a value source the checks do not resolve`);
    }
  }
  return { env, problems };
}

/** Label-selector semantics of Kubernetes: matchLabels and matchExpressions, all must hold. */
export function selectorMatches(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    const ok =
      operator === 'In' ? has && values.includes(labels[key]!) :
      operator === 'NotIn' ? !has || !values.includes(labels[key]!) :
      operator === 'Exists' ? has :
      operator === 'DoesNotExist' ? !has :
      false;
    if (!ok) return false;
  }
  return true;
}

/** A Service's `spec.selector` (a plain map) as a label selector. */
export function serviceSelects(service: IService, labels: Readonly<Record<string, string>>): boolean {
  const selector = service.spec?.selector;
  return selector !== undefined && Object.keys(selector).length > 0 && selectorMatches({ matchLabels: selector }, labels);
}

/** Kubernetes quantity to a number: CPU in cores ("250m" = 0.25), memory in bytes ("1Gi"). */
export function quantity(value: string | number | undefined): number {
  if (value === undefined) return NaN;
  if (typeof value === 'number') return value;
  const match = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(value);
  if (!match) return NaN;
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(match[1]) * (match[2] === undefined ? 1 : scale[match[2]]!);
}
