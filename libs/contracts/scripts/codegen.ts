/**
 * Code generation for @mstar/contracts, run from this package's npm scripts:
 *
 *   tsx scripts/codegen.ts write   regenerate src/gen from proto/ in place (`npm run codegen`)
 *   tsx scripts/codegen.ts check   regenerate into a temporary folder and fail, listing the
 *                                  differing paths, when the committed src/gen differs
 *   tsx scripts/codegen.ts lint    buf lint + buf format check of proto/ (`npm run lint:proto`)
 *
 * buf runs from the repository root because buf.yaml and buf.gen.yaml live there and the
 * template names the ts-proto plugin and output folder relative to it. The template's
 * `clean: true` empties the output folder first, so stale files never survive a regeneration.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The generated folder, relative to the repository root (as buf.gen.yaml's `out`). */
const GEN_DIR = join('libs', 'contracts', 'src', 'gen');
const BUF = join(dirname(createRequire(import.meta.url).resolve('@bufbuild/buf/package.json')), 'bin', 'buf');

class CodegenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodegenError';
  }
}

function buf(args: readonly string[]): void {
  const result = spawnSync(BUF, args, { cwd: REPO_ROOT, stdio: 'inherit' });
  if (result.error !== undefined) {
    throw new CodegenError(`could not run ${BUF}`, { cause: result.error });
  }
  if (result.status !== 0) {
    throw new CodegenError(`buf ${args.join(' ')} exited with status ${String(result.status ?? result.signal)}`);
  }
}

/** Paths of all files under `root`, relative to it, with forward slashes, sorted. */
function listFiles(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root, { recursive: true, encoding: 'utf8' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter((entry) => statSync(join(root, entry)).isFile())
    .map((entry) => entry.split(sep).join('/'))
    .sort();
}

/** One line per differing path: changed content, generated but not committed, or stale. */
function diffTrees(expectedRoot: string, actualRoot: string): string[] {
  const expected = new Set(listFiles(expectedRoot));
  const actual = new Set(listFiles(actualRoot));
  const differences: string[] = [];
  for (const path of [...new Set([...expected, ...actual])].sort()) {
    if (!actual.has(path)) {
      differences.push(`missing (generated, not committed): ${join(GEN_DIR, path)}`);
    } else if (!expected.has(path)) {
      differences.push(`stale (committed, no longer generated): ${join(GEN_DIR, path)}`);
    } else if (!readFileSync(join(expectedRoot, path)).equals(readFileSync(join(actualRoot, path)))) {
      differences.push(`changed: ${join(GEN_DIR, path)}`);
    }
  }
  return differences;
}

function check(): boolean {
  const scratch = mkdtempSync(join(tmpdir(), 'mstar-codegen-'));
  try {
    buf(['generate', '--output', scratch]);
    const differences = diffTrees(join(scratch, GEN_DIR), join(REPO_ROOT, GEN_DIR));
    if (differences.length === 0) {
      console.log(`${GEN_DIR} is up to date with proto/`);
      return true;
    }
    console.error(`${GEN_DIR} differs from what proto/ generates (run \`npm run codegen\`):`);
    for (const line of differences) console.error(`  ${line}`);
    return false;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function main(mode: string | undefined): boolean {
  switch (mode) {
    case 'write':
      buf(['generate']);
      console.log(`regenerated ${GEN_DIR} from proto/`);
      return true;
    case 'check':
      return check();
    case 'lint':
      buf(['lint']);
      buf(['format', '--diff', '--exit-code']);
      return true;
    default:
      throw new CodegenError(`unknown mode ${JSON.stringify(mode)}: expected write, check or lint`);
  }
}

try {
  if (!main(process.argv[2])) process.exitCode = 1;
} catch (err) {
  console.error(err instanceof CodegenError ? err.message : err);
  process.exitCode = 1;
}
