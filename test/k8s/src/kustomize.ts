import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { K8S_DIR } from './repo.js';

const run = promisify(execFile);

/** One rendered Kubernetes object, as plain JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The kubectl to use: $KUBECTL, else `kubectl` on the PATH. */
export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

const INSTALL_HINT = 'install one with `bash test/k8s/scripts/ensure-kubectl.sh` (or set $KUBECTL)';

/**
 * Checks that kubectl is there and embeds kustomize v5 or newer: components, `labels` with
 * `includeTemplates` and regex patch targets all need it (Debian's kubernetes-client 1.20 has v2).
 */
export async function checkKubectl(): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await run(KUBECTL, ['version', '--client', '--output=json']));
  } catch (err) {
    throw new Error(`cannot run '${KUBECTL}' (${(err as Error).message.split('\n')[0]}): ${INSTALL_HINT}`);
  }
  const version = (JSON.parse(stdout) as { kustomizeVersion?: string }).kustomizeVersion ?? '';
  const major = Number(/^v(\d+)\./.exec(version)?.[1] ?? NaN);
  if (!(major >= 5)) throw new Error(`'${KUBECTL}' embeds kustomize '${version || 'unknown'}', need v5 or newer: ${INSTALL_HINT}`);
  return version;
}

/** Parses a multi-document YAML stream into objects, failing on any YAML error. */
export function parseObjects(yamlText: string, source: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(yamlText)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null) out.push(value as K8sObject);
  }
  return out;
}

/** `kubectl kustomize <dir>`: the objects a kustomization renders to, offline. */
export async function render(dir: string): Promise<K8sObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await run(KUBECTL, ['kustomize', dir], { maxBuffer: 64 * 1024 * 1024 }));
  } catch (err) {
    throw new Error(`kubectl kustomize ${dir} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
  return parseObjects(stdout, dir);
}

/**
 * Renders the base with the given components only, through a throwaway kustomization, to prove
 * that each component stands on its own.
 */
export async function renderWithComponents(components: readonly string[]): Promise<K8sObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'mstar-kustomize-'));
  try {
    // kustomize refuses absolute paths to other kustomizations.
    const kustomization = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'namespace: mstar',
      'resources:',
      `  - ${relative(dir, join(K8S_DIR, 'base'))}`,
      'components:',
      ...components.map((c) => `  - ${relative(dir, join(K8S_DIR, 'components', c))}`),
      '',
    ].join('\n');
    await writeFile(join(dir, 'kustomization.yaml'), kustomization);
    return await render(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
