import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { IConfigMap, IService } from 'kubernetes-models/v1';
import { describe, expect, inject, it } from 'vitest';
import { named, ofKind, selectorMatches } from '../src/manifests.js';
import { K8S_DIR, REPO_ROOT } from '../src/repo.js';

const objects = inject('renders')['overlays/gpu']!;
const DASHBOARD_FILE = join(K8S_DIR, 'components', 'monitoring', 'dashboards', 'mstar.json');

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
}

/** Metric names registered in the services' and the gRPC library's sources (`name: 'mstar_...'`). */
async function definedMetrics(): Promise<Set<string>> {
  const roots = [join(REPO_ROOT, 'libs', 'infra', 'grpc', 'src'), ...(await readdir(join(REPO_ROOT, 'services'))).map((s) => join(REPO_ROOT, 'services', s, 'src'))];
  const names = new Set<string>();
  for (const root of roots) {
    let files: string[];
    try {
      files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    } catch {
      continue;
    }
    for (const file of files) {
      for (const match of (await readFile(join(root, file), 'utf8')).matchAll(/name: '((?:mstar|grpc_server)_[a-z0-9_]+)'/g)) names.add(match[1]!);
    }
  }
  return names;
}

/** The mstar and gRPC series a PromQL expression reads; histogram series map to their metric. */
function metricsIn(expr: string, defined: Set<string>): string[] {
  return [...expr.matchAll(/\b((?:mstar|grpc_server)_[a-z0-9_]+)\b/g)].map(([, name]) => {
    const base = name!.replace(/_(bucket|sum|count)$/, '');
    return defined.has(name!) ? name! : base;
  });
}

describe('monitoring', () => {
  it('ships the dashboard JSON as a ConfigMap the Grafana sidecar picks up', async () => {
    const dashboard: unknown = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8'));
    const configMap = named<IConfigMap>(objects, 'ConfigMap', 'mstar-grafana-dashboard');
    expect(configMap?.metadata?.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(configMap!.data!['mstar.json']!)).toEqual(dashboard);
  });

  it('charts the per-iteration statistics, and only metrics that the services register', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as { uid: string; panels: Panel[] };
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of panels) expect(p.targets?.length, p.title).toBeGreaterThan(0);

    const defined = await definedMetrics();
    const used = new Set(panels.flatMap((p) => p.targets!.flatMap((t) => metricsIn(t.expr, defined))));
    expect([...used].filter((m) => !defined.has(m)), 'metrics no service registers').toEqual([]);
    for (const perIteration of ['mstar_policy_loaded_version', 'mstar_balancer_temperature', 'mstar_balancer_greedy_accuracy', 'mstar_curation_samples_kept_total', 'mstar_curation_samples_correct_total', 'mstar_trainer_loss']) {
      expect(used, perIteration).toContain(perIteration);
    }
  });

  it('scales policy-inference on its queue depth, a metric it registers', async () => {
    const scaled = ofKind<IScaledObject>(objects, 'ScaledObject');
    expect(scaled.map((s) => s.spec?.scaleTargetRef.name)).toEqual(['policy-inference']);
    const query = scaled[0]!.spec.triggers[0]!.metadata.query!;
    const defined = await definedMetrics();
    expect(metricsIn(query, defined)).toEqual(['mstar_policy_queue_depth']);
    expect(defined).toContain('mstar_policy_queue_depth');
  });

  it('scrapes the metrics port of every service once', () => {
    const [monitor, ...more] = ofKind<IServiceMonitor>(objects, 'ServiceMonitor');
    expect(more).toEqual([]);
    const scraped = ofKind<IService>(objects, 'Service').filter(
      (s) => selectorMatches(monitor!.spec.selector, s.metadata?.labels ?? {}) && s.spec?.ports?.some((p) => p.name === monitor!.spec.endpoints[0]!.port),
    );
    expect(scraped.map((s) => s.metadata?.name).sort()).toEqual(['balancer', 'data-curation', 'policy-inference', 'prm-scoring', 'trainer']);
    for (const s of scraped) expect(s.spec?.ports?.find((p) => p.name === 'metrics')).toMatchObject({ port: 9464, targetPort: 'metrics' });
  });
});
