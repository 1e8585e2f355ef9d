import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const K8S_DIR = join(REPO_ROOT, 'k8s');
export const SERVICES_DIR = join(REPO_ROOT, 'services');

/** The overlays users apply, each a folder under k8s/overlays. */
export const OVERLAYS = ['dev', 'gpu'] as const;
export type Overlay = (typeof OVERLAYS)[number];

export interface ServicePackage {
  /** The folder under services/, which is also the workload's app.kubernetes.io/name. */
  readonly name: string;
  /** The npm package name (`@mstar/policy-inference`). */
  readonly packageName: string;
}

/** Every service package under services/ (a folder with a package.json), sorted by folder name. */
export async function servicePackages(): Promise<ServicePackage[]> {
  const entries = await readdir(SERVICES_DIR, { withFileTypes: true });
  const out: ServicePackage[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    let manifest: string;
    try {
      manifest = await readFile(join(SERVICES_DIR, entry.name, 'package.json'), 'utf8');
    } catch {
      continue;
    }
    out.push({ name: entry.name, packageName: (JSON.parse(manifest) as { name: string }).name });
  }
  return out;
}

/** The folders under k8s/components. */
export async function componentNames(): Promise<string[]> {
  const entries = await readdir(join(K8S_DIR, 'components'), { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}
