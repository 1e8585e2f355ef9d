import * as kedaV1alpha1 from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as coreV1 from 'kubernetes-models/v1';
import type { K8sObject } from './kustomize.js';

/**
 * The API groups the manifests may use, each with its models: Kubernetes 1.27 (kubernetes-models),
 * KEDA and the Prometheus Operator. An object of any other apiVersion is reported, not skipped.
 */
const MODULES: Readonly<Record<string, object>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'autoscaling/v2': autoscalingV2,
  'networking.k8s.io/v1': networkingV1,
  'policy/v1': policyV1,
  'keda.sh/v1alpha1': kedaV1alpha1,
  'monitoring.coreos.com/v1': monitoringV1,
};

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  readonly prototype: { validate(this: unknown): void };
}

function isModelClass(value: unknown): value is ModelClass {
  return typeof value === 'function' && typeof (value as { kind?: unknown }).kind === 'string' && typeof (value as { apiVersion?: unknown }).apiVersion === 'string';
}

function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  const mod = MODULES[apiVersion];
  if (mod === undefined) return undefined;
  return Object.values(mod).find((v): v is ModelClass => isModelClass(v) && v.kind === kind && v.apiVersion === apiVersion);
}

/**
 * Wraps `value` so that every own property the validator reads is recorded (as a JSON pointer).
 * The generated validators read each property their schema declares, and iterate the keys of
 * maps (labels, resource limits, ConfigMap data), so a property never read is one the schema does
 * not know: that is how unknown fields are found, which the schemas alone (no
 * additionalProperties: false in Kubernetes' OpenAPI) would let through.
 */
function tracked(value: unknown, path: string, read: Set<string>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const children = new Map<string, unknown>();
  return new Proxy(value, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !Object.prototype.hasOwnProperty.call(target, key)) return v;
      const childPath = `${path}/${key}`;
      read.add(childPath);
      if (!children.has(key)) children.set(key, tracked(v, childPath, read));
      return children.get(key);
    },
  });
}

function fieldPaths(value: unknown, path: string, out: string[]): string[] {
  if (value === null || typeof value !== 'object') return out;
  for (const [key, child] of Object.entries(value)) {
    out.push(`${path}/${key}`);
    fieldPaths(child, `${path}/${key}`, out);
  }
  return out;
}

/**
 * Validates one object against its schema. Returns every problem: schema violations (wrong types,
 * missing required fields, bad enums) and unknown fields (e.g. a misspelt `imagePullPolcy`, which
 * `kubectl apply` would silently drop), each naming the object and the field.
 */
export function validateObject(obj: K8sObject): string[] {
  const name = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  const model = modelFor(obj.apiVersion, obj.kind);
  if (model === undefined) return [`${name}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const read = new Set<string>();
  try {
    model.prototype.validate.call(tracked(obj, '', read));
  } catch (err) {
    return [`${name}: ${(err as Error).message}`];
  }
  // Report the outermost unknown field only, not every field under it.
  const unknown = fieldPaths(obj, '', []).filter((p) => !read.has(p) && (parentOf(p) === '' || read.has(parentOf(p))));
  return unknown.map((p) => `${name}: unknown field ${p}`);
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}
