import type { TestProject } from 'vitest/node';
import { checkKubectl, render, renderWithComponents, type K8sObject } from './kustomize.js';
import { componentNames, K8S_DIR, OVERLAYS } from './repo.js';
import { join } from 'node:path';

/** Labels of what is rendered: `base`, `overlays/<name>`, `base + <component>`. */
export type Renders = Record<string, K8sObject[]>;

declare module 'vitest' {
  export interface ProvidedContext {
    renders: Renders;
  }
}

/**
 * Renders the base, every overlay and the base with each component alone, once per test run
 * (kubectl is the slow part), and hands the objects to every test file through `inject('renders')`.
 */
export default async function setup(project: TestProject): Promise<void> {
  await checkKubectl();
  const targets: [string, Promise<K8sObject[]>][] = [
    ['base', render(join(K8S_DIR, 'base'))],
    ...OVERLAYS.map((o): [string, Promise<K8sObject[]>] => [`overlays/${o}`, render(join(K8S_DIR, 'overlays', o))]),
    ...(await componentNames()).map((c): [string, Promise<K8sObject[]>] => [`base + ${c}`, renderWithComponents([c])]),
  ];
  const renders: Renders = {};
  for (const [label, objects] of targets) renders[label] = await objects;
  project.provide('renders', renders);
}
