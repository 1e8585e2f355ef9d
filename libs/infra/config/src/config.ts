import { InvalidArgumentError } from '@mstar/errors';
import { z } from 'zod';

export type Env = Readonly<Record<string, string | undefined>>;

/** Each key is the environment variable's name; each value parses that variable's raw string. */
export type ConfigShape = Record<string, z.ZodType<unknown, string | undefined>>;

export type ConfigOf<S extends ConfigShape> = { readonly [K in keyof S]: z.output<S[K]> };

export interface ConfigProblem {
  variable: string;
  problem: string;
}

/** Every variable that was missing or malformed, all at once, so one restart fixes them all. */
export class ConfigError extends InvalidArgumentError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map(({ variable, problem }) => `  ${variable}: ${problem}`);
    super(
      `invalid configuration: ${problems.length} variable${problems.length === 1 ? '' : 's'} wrong\n${lines.join('\n')}`,
      { field: problems.map((p) => p.variable).join(',') },
    );
    this.problems = problems;
  }
}

export interface ConfigDefinition<S extends ConfigShape> {
  readonly shape: S;
  /** Parses `env` (the process environment unless given) and returns a frozen config object. */
  loadConfig(env?: Env): ConfigOf<S>;
}

export function defineConfig<S extends ConfigShape>(shape: S): ConfigDefinition<S> {
  const entries = Object.entries(shape);
  return {
    shape,
    loadConfig(env: Env = process.env): ConfigOf<S> {
      const values: Record<string, unknown> = {};
      const problems: ConfigProblem[] = [];
      for (const [variable, schema] of entries) {
        const raw = env[variable];
        // `VAR=` in a manifest means "not set": let defaults and optionals apply.
        const input = raw === undefined || raw === '' ? undefined : raw;
        const result = schema.safeParse(input);
        if (result.success) {
          values[variable] = result.data;
        } else if (input === undefined) {
          problems.push({ variable, problem: 'required but not set' });
        } else {
          const problem = result.error.issues.map((issue) => issue.message).join('; ');
          problems.push({ variable, problem: isSecret(schema) ? problem : `${problem}, got ${quote(input)}` });
        }
      }
      if (problems.length > 0) throw new ConfigError(problems);
      return Object.freeze(values) as ConfigOf<S>;
    },
  };
}

export type VariablePresence = 'required' | 'optional' | 'defaulted';

export interface ConfigVariable {
  readonly name: string;
  /** `required`: loading fails without it; `optional`: it may stay unset; `defaulted`: unset means `defaultValue`. */
  readonly presence: VariablePresence;
  /** The parsed value an unset `defaulted` variable takes (`undefined` for the other two). */
  readonly defaultValue?: unknown;
  /** Wrapped in `secret(...)`: a deployment should take it from a Secret, not a ConfigMap. */
  readonly secret: boolean;
}

/**
 * The variables a definition reads, in declaration order, each with whether it must be set. Found
 * by parsing "unset" through each schema, so it holds for any zod schema, not only the helpers here.
 * Deployment checks use it to prove that manifests set every required variable and nothing unknown.
 */
export function describeConfig(definition: { readonly shape: ConfigShape }): ConfigVariable[] {
  return Object.entries(definition.shape).map(([name, schema]) => {
    const unset = schema.safeParse(undefined);
    const secretVar = isSecret(schema);
    if (!unset.success) return { name, presence: 'required', secret: secretVar };
    if (unset.data === undefined) return { name, presence: 'optional', secret: secretVar };
    return { name, presence: 'defaulted', defaultValue: unset.data, secret: secretVar };
  });
}

function quote(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 60)}...` : value;
  return JSON.stringify(shown);
}

const secrets = new WeakSet<object>();

function isSecret(schema: object): boolean {
  return secrets.has(schema);
}

/** Marks a variable whose value must never appear in error messages (tokens, passwords). */
export function secret<T extends z.ZodType<unknown, string | undefined>>(schema: T): T {
  secrets.add(schema);
  return schema;
}

type StringSchema<T> = z.ZodType<T, string>;

function parsed<T>(parse: (raw: string) => T | undefined, expected: string): StringSchema<T> {
  return z.string().transform((raw, ctx) => {
    const value = parse(raw.trim());
    if (value === undefined) {
      ctx.issues.push({ code: 'custom', message: `expected ${expected}`, input: raw });
      return z.NEVER;
    }
    return value;
  });
}

function parseInteger(raw: string): number | undefined {
  return /^[+-]?\d+$/.test(raw) ? Number(raw) : undefined;
}

/** A TCP port, 0..65535 (0 = pick a free one). */
export function port(): StringSchema<number> {
  return parsed((raw) => {
    const n = parseInteger(raw);
    return n !== undefined && n >= 0 && n <= 65535 ? n : undefined;
  }, 'a port number between 0 and 65535');
}

export interface RangeOptions {
  min?: number;
  max?: number;
}

function inRange(what: string, { min, max }: RangeOptions): string {
  if (min !== undefined && max !== undefined) return `${what} between ${min} and ${max}`;
  if (min !== undefined) return `${what} >= ${min}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

export function int(options: RangeOptions = {}): StringSchema<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = options;
  return parsed((raw) => {
    const n = parseInteger(raw);
    return n !== undefined && n >= min && n <= max ? n : undefined;
  }, inRange('an integer', options));
}

export function number(options: RangeOptions = {}): StringSchema<number> {
  const { min = -Infinity, max = Infinity } = options;
  return parsed((raw) => {
    const n = raw === '' ? NaN : Number(raw);
    return Number.isFinite(n) && n >= min && n <= max ? n : undefined;
  }, inRange('a number', options));
}

export function string(): StringSchema<string> {
  return parsed((raw) => (raw === '' ? undefined : raw), 'a non-empty string');
}

/** An absolute URL, optionally restricted to some schemes (`['nats', 'tls']`). */
export function url(options: { protocols?: readonly string[] } = {}): StringSchema<string> {
  const protocols = options.protocols?.map((p) => p.replace(/:$/, ''));
  const expected = protocols ? `a URL with scheme ${protocols.join(' or ')}` : 'an absolute URL';
  return parsed((raw) => {
    if (!URL.canParse(raw)) return undefined;
    const scheme = new URL(raw).protocol.replace(/:$/, '');
    return protocols === undefined || protocols.includes(scheme) ? raw : undefined;
  }, expected);
}

/** A `host:port` peer address (the `*_ADDR` variables). */
export function address(): StringSchema<string> {
  return parsed((raw) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d+)$/.exec(raw);
    const p = match ? Number(match[2]) : NaN;
    return match && p > 0 && p <= 65535 ? raw : undefined;
  }, 'host:port');
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in milliseconds: `1500`, `1500ms`, `30s`, `2.5m`, `1h`. */
export function durationMs(): StringSchema<number> {
  return parsed((raw) => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(raw);
    if (!match) return undefined;
    return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']!);
  }, 'a duration such as 1500, 1500ms, 30s, 5m or 1h');
}

/** `true`/`false`/`1`/`0` (case-insensitive); anything else is an error rather than a guess. */
export function bool(): StringSchema<boolean> {
  return parsed((raw) => {
    const lower = raw.toLowerCase();
    if (lower === 'true' || lower === '1') return true;
    if (lower === 'false' || lower === '0') return false;
    return undefined;
  }, 'true, false, 1 or 0');
}

export function oneOf<const V extends readonly [string, ...string[]]>(values: V): StringSchema<V[number]> {
  return parsed((raw) => values.find((v) => v === raw), `one of ${values.join(', ')}`);
}

/** A comma-separated list; blanks around items are dropped. */
export function list<T>(item: StringSchema<T>, options: { min?: number } = {}): StringSchema<T[]> {
  const min = options.min ?? 1;
  return z.string().transform((raw, ctx) => {
    const parts = raw.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (parts.length < min) {
      ctx.issues.push({ code: 'custom', message: `expected at least ${min} comma-separated item(s)`, input: raw });
      return z.NEVER;
    }
    const out: T[] = [];
    for (const [i, part] of parts.entries()) {
      const r = item.safeParse(part);
      if (r.success) out.push(r.data);
      else ctx.issues.push({ code: 'custom', message: `item ${i + 1}: ${r.error.issues.map((x) => x.message).join('; ')}`, input: raw });
    }
    return ctx.issues.length > 0 ? z.NEVER : out;
  });
}
