import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { isValidRunId } from '@mstar/contracts';
import { InvalidArgumentError, NotFoundError } from '@mstar/errors';
import { formatRunSpec, parseRunSpec, type ResolvedRunSpec } from '@mstar/runspec';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

/*
 * An experiment file (experiments/<name>.yaml) names a set of rows; each row is a run spec (a base
 * spec file plus overrides in the run-spec format) run once per seed. A row may instead extend an
 * earlier row (`extends: <row>`): its overrides then apply over that row's spec, so a variant
 * names only what it changes. Everything is resolved and validated when the file is loaded, so a
 * typo in the last row fails in a second, not after hours.
 */

/** A row that runs: one run per seed of `specFor(seed)`. */
export interface RunRow {
  readonly kind: 'run';
  readonly name: string;
  readonly description: string;
  /** The base spec file, absolute. */
  readonly base: string;
  /** The row's spec at a seed: base + overrides, `seed` set, named `<experiment>-<row>`. */
  specFor(seed: number): ResolvedRunSpec;
}

/**
 * The warm-up row: iteration 0 (the warm-up policy v0) of another row's runs. Every run of a seed
 * trains the same v0 (the warm-up depends only on the world, the warm-up settings and the seed),
 * so a separate run would only repeat that work.
 */
export interface WarmupRow {
  readonly kind: 'warmup';
  readonly name: string;
  readonly description: string;
  /** The run row whose iteration 0 this row reports. */
  readonly of: string;
}

export type ExperimentRow = RunRow | WarmupRow;

export interface Experiment {
  readonly name: string;
  readonly description: string;
  /** The seeds run when the command names none. */
  readonly seeds: readonly number[];
  readonly rows: readonly ExperimentRow[];
}

/** Seeds of an experiment file that does not list its own. */
export const DEFAULT_SEEDS: readonly number[] = [1, 2, 3];

const EXPERIMENT_KEYS = ['description', 'base', 'seeds', 'rows'] as const;
const ROW_KEYS = ['name', 'description', 'base', 'extends', 'overrides', 'warmup_of'] as const;
/** Settings the experiment owns: the seed comes from `--seeds`, the name from the row. */
const OWNED_SETTINGS = ['seed', 'name'] as const;
/** Row names become folder names and part of run ids. */
const ROW_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isMapping = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function fail(source: string, field: string, message: string): never {
  throw new InvalidArgumentError(`${source}: ${field}: ${message}`, { field });
}

function checkKeys(value: Record<string, unknown>, known: readonly string[], source: string, at: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) fail(source, at === '' ? key : `${at}.${key}`, `unknown key (known: ${known.join(', ')})`);
  }
}

/** Keys to snake_case at every level, so `intervalFraction` and `interval_fraction` name one setting. */
function snakeKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (!isMapping(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeKeys(v)]));
}

/** Deep merge of mappings; lists, scalars and the grid (a oneof) are replaced whole, as in a spec file over the defaults. */
function merge(base: Json, over: Json): Json {
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = key === 'grid' ? value : merge(base[key] ?? null, value);
  return out;
}

/** The experiment's name from its file: `experiments/paper-table.yaml` -> `paper-table`. */
export function experimentName(path: string): string {
  return basename(path, extname(path));
}

/**
 * Parses an experiment file. `readBase` returns the text of a base spec (paths are resolved
 * against `dir`, the experiment file's folder). Errors name the key: `rows[2].overrides.top_p`.
 */
export async function parseExperiment(text: string, options: { name: string; source: string; dir: string; readBase: (path: string) => Promise<string> }): Promise<Experiment> {
  const { name, source } = options;
  if (!ROW_NAME.test(name)) fail(source, 'name', `the file name ${JSON.stringify(name)} must match ${ROW_NAME.source} (it names the results folder and the run ids)`);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new InvalidArgumentError(`${source}: not valid YAML: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (!isMapping(raw)) throw new InvalidArgumentError(`${source}: an experiment must be a mapping with rows`);
  checkKeys(raw, EXPERIMENT_KEYS, source, '');
  const description = optionalString(raw['description'], source, 'description');
  const defaultBase = optionalString(raw['base'], source, 'base');
  const seeds = raw['seeds'] === undefined ? DEFAULT_SEEDS : parseSeedList(raw['seeds'], source, 'seeds');
  const rowsRaw = raw['rows'];
  if (!Array.isArray(rowsRaw) || rowsRaw.length === 0) fail(source, 'rows', 'must be a non-empty list of rows');

  // Base specs are read and validated once each, under their own file name.
  const bases = new Map<string, Json>();
  const baseSpec = async (path: string, field: string): Promise<Json> => {
    let spec = bases.get(path);
    if (spec === undefined) {
      const text = await options.readBase(path).catch((cause: unknown) => fail(source, field, `cannot read ${path}: ${cause instanceof Error ? cause.message : String(cause)}`));
      spec = snakeKeys(parseYaml(formatRunSpec(parseRunSpec(text, path))) as Json);
      bases.set(path, spec);
    }
    return spec;
  };

  const rows: ExperimentRow[] = [];
  /** Each run row's settings before the seed and name: what a row that extends it starts from. */
  const settings = new Map<string, { base: string; merged: Json }>();
  for (const [i, rowRaw] of rowsRaw.entries()) {
    const at = `rows[${i}]`;
    if (!isMapping(rowRaw)) fail(source, at, 'must be a mapping with a name');
    checkKeys(rowRaw, ROW_KEYS, source, at);
    const rowName = rowRaw['name'];
    if (typeof rowName !== 'string' || !ROW_NAME.test(rowName)) fail(source, `${at}.name`, `must match ${ROW_NAME.source}, got ${JSON.stringify(rowName)}`);
    if (rows.some((r) => r.name === rowName)) fail(source, `${at}.name`, `${rowName} names two rows`);
    if (!isValidRunId(runIdOf(name, rowName, 0xffffffff))) fail(source, `${at}.name`, `${name}-${rowName} is too long for a run id`);
    const rowDescription = optionalString(rowRaw['description'], source, `${at}.description`);
    const warmupOf = rowRaw['warmup_of'];
    if (warmupOf !== undefined) {
      if (rowRaw['base'] !== undefined || rowRaw['extends'] !== undefined || rowRaw['overrides'] !== undefined) fail(source, `${at}.warmup_of`, 'a warm-up row runs nothing: no base, extends or overrides');
      if (typeof warmupOf !== 'string') fail(source, `${at}.warmup_of`, 'must name a row');
      rows.push({ kind: 'warmup', name: rowName, description: rowDescription, of: warmupOf });
      continue;
    }
    const overrides = rowRaw['overrides'] ?? {};
    if (!isMapping(overrides)) fail(source, `${at}.overrides`, 'must be a mapping of run-spec settings');
    const given = snakeKeys(overrides) as Record<string, Json>;
    for (const owned of OWNED_SETTINGS) {
      if (given[owned] !== undefined) fail(source, `${at}.overrides.${owned}`, 'is set by the experiment (the seed by --seeds, the name by the row)');
    }
    const extended = optionalString(rowRaw['extends'], source, `${at}.extends`);
    let from: { base: string; merged: Json };
    if (extended !== '') {
      if (rowRaw['base'] !== undefined) fail(source, `${at}.base`, `a row that extends another takes its base (${extended}'s)`);
      const parent = settings.get(extended);
      if (parent === undefined) fail(source, `${at}.extends`, `${JSON.stringify(extended)} is not an earlier row that runs (rows so far: ${[...settings.keys()].join(', ') || 'none'})`);
      from = parent;
    } else {
      const basePath = optionalString(rowRaw['base'], source, `${at}.base`) || defaultBase;
      if (basePath === '') fail(source, `${at}.base`, 'is required (here or at the top level)');
      const base = resolve(options.dir, basePath);
      from = { base, merged: await baseSpec(base, rowRaw['base'] === undefined ? 'base' : `${at}.base`) };
    }
    const { base } = from;
    const merged = merge(from.merged, given);
    settings.set(rowName, { base, merged });
    const specFor = (seed: number): ResolvedRunSpec => {
      const text = stringifyYaml(merge(merged, { seed, name: `${name}-${rowName}` }));
      try {
        return parseRunSpec(text, `${at}.overrides`);
      } catch (error) {
        if (!(error instanceof InvalidArgumentError)) throw error;
        const field = error.field === undefined ? `${at}.overrides` : `${at}.overrides.${error.field}`;
        throw new InvalidArgumentError(`${source}: ${at} (${rowName}) overrides: ${error.message}`, { field, cause: error });
      }
    };
    specFor(seeds[0] ?? 1);
    rows.push({ kind: 'run', name: rowName, description: rowDescription, base, specFor });
  }

  for (const [i, row] of rows.entries()) {
    if (row.kind !== 'warmup') continue;
    const target = rows.find((r) => r.name === row.of);
    if (target?.kind !== 'run') fail(source, `rows[${i}].warmup_of`, `${JSON.stringify(row.of)} is not a row that runs (rows: ${rows.filter((r) => r.kind === 'run').map((r) => r.name).join(', ')})`);
  }
  // Rows compare only on one world: the same validation and test sets, and the same prompts. The
  // pool may differ in size: it is the first pool_size train problems, so a larger one extends a
  // smaller one (runItems).
  const runRows = rows.filter((r): r is RunRow => r.kind === 'run');
  const comparable = (row: RunRow | undefined) => JSON.stringify({ ...row?.specFor(1).world, poolSize: 0 });
  const world = comparable(runRows[0]);
  for (const row of runRows) {
    if (comparable(row) !== world) {
      fail(source, `rows[${rows.indexOf(row)}]`, `${row.name} has another world than ${runRows[0]?.name}; the rows of one experiment share one world so their numbers compare`);
    }
  }
  return { name, description, seeds, rows };
}

/** Reads `experiments/<name>.yaml` (or any path to an experiment file) and its base specs. */
export async function loadExperiment(path: string): Promise<Experiment> {
  const text = await readFile(path, 'utf8').catch((cause: unknown) => {
    throw new NotFoundError(`experiment file ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  });
  return parseExperiment(text, { name: experimentName(path), source: path, dir: dirname(resolve(path)), readBase: (p) => readFile(p, 'utf8') });
}

/** The run id of a row's run at a seed: `<experiment>-<row>-s<seed>`. */
export function runIdOf(experiment: string, row: string, seed: number): string {
  return `${experiment}-${row}-s${seed}`;
}

function optionalString(value: unknown, source: string, field: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') fail(source, field, `must be a string, got ${JSON.stringify(value)}`);
  return value.trim();
}

/** Seeds: distinct integers >= 0, from a YAML list or a comma-separated string (`--seeds 1,2,3`). */
export function parseSeedList(value: unknown, source = '--seeds', field = 'seeds'): number[] {
  const items = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(items) || items.length === 0) fail(source, field, 'must be a non-empty list of seeds');
  const seeds = items.map((s: unknown) => (typeof s === 'string' && s !== '' ? Number(s) : s));
  seeds.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 0xffffffff) fail(source, `${field}[${i}]`, `must be an integer in [0, 4294967295], got ${JSON.stringify(items[i])}`);
  });
  if (new Set(seeds).size !== seeds.length) fail(source, field, 'has duplicates');
  return seeds as number[];
}
