import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { args, parseDockerfile, stageNamed, type Dockerfile } from '../src/dockerfile.js';
import { workloads } from '../src/manifests.js';
import { REPO_ROOT } from '../src/repo.js';

// Docker cannot run on the CI machines; these check the properties the image must have.
const dockerfile: Dockerfile = parseDockerfile(await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const finalStage = dockerfile.stages.at(-1)!;

describe('Dockerfile', () => {
  it('is parameterised by SERVICE and VARIANT (cpu by default) with a CPU and a CUDA 12 + cuDNN runtime', () => {
    expect(dockerfile.globalArgs.get('VARIANT')).toBe('cpu');
    expect(finalStage.from).toBe('runtime-${VARIANT}');
    expect(stageNamed(dockerfile, 'runtime-cpu').from).toBe('${NODE_IMAGE}');
    expect(stageNamed(dockerfile, 'runtime-gpu').from).toBe('${CUDA_IMAGE}');
    expect(dockerfile.globalArgs.get('CUDA_IMAGE')).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-/);
    // Node 20, the version of .nvmrc and of CI.
    expect(dockerfile.globalArgs.get('NODE_IMAGE')).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
    expect(args(stageNamed(dockerfile, 'build'), 'ARG')).toEqual(['SERVICE', 'VARIANT']);
    expect(args(finalStage, 'ARG')).toEqual(['SERVICE', 'VARIANT']);
  });

  it('installs from the root lockfile with npm ci, and onnxruntime-node with CUDA 12 only for gpu', () => {
    const manifests = stageNamed(dockerfile, 'manifests');
    const copied = args(manifests, 'RUN').join('\n');
    expect(copied).toContain('cp package-lock.json .npmrc /out/');
    // Every workspace's package.json (wherever the root's "workspaces" puts them), the root's too.
    expect(copied).toContain("find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /out/");
    const build = stageNamed(dockerfile, 'build');
    const runs = args(build, 'RUN');
    expect(runs.filter((r) => /\bnpm (ci|install|i)\b/.test(r)).map((r) => /\bnpm (ci|install|i)\b/.exec(r)![1])).toEqual(['ci']);
    const ort = runs.find((r) => r.includes('onnxruntime-node/script/install.js'))!;
    expect(ort).toContain('cpu) export ONNXRUNTIME_NODE_INSTALL=skip');
    expect(ort).toContain('gpu) export ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(runs.some((r) => r.includes('nx run "@mstar/${SERVICE}:build"') && r.includes('npm prune --omit=dev'))).toBe(true);
  });

  it('runs the service from its build output as a numeric non-root user, the one the manifests run as', () => {
    const users = args(finalStage, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const [uid, gid] = users.at(-1)!.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    for (const [label, objects] of Object.entries(inject('renders'))) {
      for (const w of workloads(objects)) expect(w.pod.securityContext?.runAsUser, `${label} ${w.name}`).toBe(uid);
    }
    expect(args(finalStage, 'ENTRYPOINT')).toEqual(['["node", "/app/main.js"]']);
    expect(args(finalStage, 'RUN')).toContain('ln -s "services/${SERVICE}/dist/main.js" /app/main.js');
    expect(args(finalStage, 'COPY')).toEqual(expect.arrayContaining(['--from=build /app/node_modules ./node_modules', '--from=build /app/services/${SERVICE} ./services/${SERVICE}', '--from=build /app/proto ./proto']));
  });

  it('keeps local installs and build outputs out of the build context', async () => {
    const ignored = (await readFile(join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
  });
});

describe('the Dockerfile parser', () => {
  it('joins continuation lines, drops comments and splits stages', () => {
    const parsed = parseDockerfile('ARG A=1\n# note\nFROM x AS one\nRUN a \\\n    && b\nFROM one\nUSER 5\n');
    expect(parsed.globalArgs).toEqual(new Map([['A', '1']]));
    expect(parsed.stages).toEqual([
      { from: 'x', name: 'one', instructions: [{ keyword: 'RUN', args: 'a && b', line: 4 }] },
      { from: 'one', name: undefined, instructions: [{ keyword: 'USER', args: '5', line: 7 }] },
    ]);
  });
});
