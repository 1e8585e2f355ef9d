import { InvalidArgumentError } from '@mstar/errors';
import { describe, expect, it } from 'vitest';
import {
  address,
  bool,
  ConfigError,
  defineConfig,
  describeConfig,
  durationMs,
  int,
  list,
  number,
  oneOf,
  port,
  secret,
  string,
  url,
  z,
} from '../src/index.js';

const serviceConfig = defineConfig({
  GRPC_PORT: port().default(50051),
  NATS_URL: url({ protocols: ['nats', 'tls'] }).optional(),
  POLICY_ADDR: address(),
  LOG_LEVEL: oneOf(['debug', 'info', 'warn']).default('info'),
  SHUTDOWN_GRACE: durationMs().default(10_000),
  USE_GPU: bool().default(false),
  BATCH_SIZE: int({ min: 1, max: 256 }).default(8),
});

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('defineConfig', () => {
  it('applies defaults and parses typed values from an env object', () => {
    const config = serviceConfig.loadConfig({ POLICY_ADDR: 'policy-inference:50051' });
    expect(config).toEqual({
      GRPC_PORT: 50051,
      NATS_URL: undefined,
      POLICY_ADDR: 'policy-inference:50051',
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE: 10_000,
      USE_GPU: false,
      BATCH_SIZE: 8,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses every kind of value', () => {
    const config = serviceConfig.loadConfig({
      GRPC_PORT: '0',
      NATS_URL: 'nats://127.0.0.1:4222',
      POLICY_ADDR: '[::1]:9000',
      LOG_LEVEL: 'debug',
      SHUTDOWN_GRACE: '2.5m',
      USE_GPU: 'TRUE',
      BATCH_SIZE: ' 32 ',
    });
    expect(config).toMatchObject({
      GRPC_PORT: 0,
      NATS_URL: 'nats://127.0.0.1:4222',
      POLICY_ADDR: '[::1]:9000',
      LOG_LEVEL: 'debug',
      SHUTDOWN_GRACE: 150_000,
      USE_GPU: true,
      BATCH_SIZE: 32,
    });
  });

  it('reports every bad and missing variable in one error', () => {
    const err = errorOf(() =>
      serviceConfig.loadConfig({
        GRPC_PORT: '70000',
        NATS_URL: 'http://x',
        LOG_LEVEL: 'loud',
        SHUTDOWN_GRACE: '10 minutes',
        USE_GPU: 'yes',
        BATCH_SIZE: '0',
      }),
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.problems).toEqual([
      { variable: 'GRPC_PORT', problem: 'expected a port number between 0 and 65535, got "70000"' },
      { variable: 'NATS_URL', problem: 'expected a URL with scheme nats or tls, got "http://x"' },
      { variable: 'POLICY_ADDR', problem: 'required but not set' },
      { variable: 'LOG_LEVEL', problem: 'expected one of debug, info, warn, got "loud"' },
      { variable: 'SHUTDOWN_GRACE', problem: 'expected a duration such as 1500, 1500ms, 30s, 5m or 1h, got "10 minutes"' },
      { variable: 'USE_GPU', problem: 'expected true, false, 1 or 0, got "yes"' },
      { variable: 'BATCH_SIZE', problem: 'expected an integer between 1 and 256, got "0"' },
    ]);
    expect(err.message.split('\n')).toEqual([
      'invalid configuration: 7 variables wrong',
      '  GRPC_PORT: expected a port number between 0 and 65535, got "70000"',
      '  NATS_URL: expected a URL with scheme nats or tls, got "http://x"',
      '  POLICY_ADDR: required but not set',
      '  LOG_LEVEL: expected one of debug, info, warn, got "loud"',
      '  SHUTDOWN_GRACE: expected a duration such as 1500, 1500ms, 30s, 5m or 1h, got "10 minutes"',
      '  USE_GPU: expected true, false, 1 or 0, got "yes"',
      '  BATCH_SIZE: expected an integer between 1 and 256, got "0"',
    ]);
  });

  it('treats an empty variable as unset', () => {
    expect(serviceConfig.loadConfig({ POLICY_ADDR: 'p:1', GRPC_PORT: '' }).GRPC_PORT).toBe(50051);
    expect(errorOf(() => serviceConfig.loadConfig({ POLICY_ADDR: '' })).problems).toEqual([
      { variable: 'POLICY_ADDR', problem: 'required but not set' },
    ]);
  });

  it('never echoes a secret value', () => {
    const cfg = defineConfig({ TOKEN: secret(string().pipe(z.string().min(20, 'must be at least 20 characters'))) });
    const err = errorOf(() => cfg.loadConfig({ TOKEN: 'hunter2' }));
    expect(err.problems).toEqual([{ variable: 'TOKEN', problem: 'must be at least 20 characters' }]);
    expect(err.message).not.toContain('hunter2');
  });

  it('reads process.env by default without changing it', () => {
    const before = { ...process.env };
    const cfg = defineConfig({ PATH: string() });
    expect(cfg.loadConfig().PATH).toBe(process.env.PATH);
    expect(process.env).toEqual(before);
  });
});

describe('value helpers', () => {
  const one = <T>(schema: z.ZodType<T, string>, raw: string): T => defineConfig({ V: schema }).loadConfig({ V: raw }).V;
  const bad = (schema: z.ZodType<unknown, string>, raw: string): string =>
    errorOf(() => defineConfig({ V: schema }).loadConfig({ V: raw })).problems[0]!.problem;

  it('durations accept bare milliseconds and units', () => {
    expect(['1500', '1500ms', '1.5s', '2m', '1h'].map((v) => one(durationMs(), v))).toEqual([1500, 1500, 1500, 120_000, 3_600_000]);
    expect(bad(durationMs(), '-5s')).toContain('expected a duration');
  });

  it('booleans accept exactly true/false/1/0', () => {
    expect(['true', 'False', '1', '0'].map((v) => one(bool(), v))).toEqual([true, false, true, false]);
    expect(bad(bool(), 'on')).toBe('expected true, false, 1 or 0, got "on"');
  });

  it('ports and integers reject fractions and junk', () => {
    expect(one(port(), '65535')).toBe(65535);
    expect(bad(port(), '80.5')).toContain('expected a port number');
    expect(bad(port(), '80abc')).toContain('expected a port number');
    expect(bad(int({ min: 2 }), '1')).toBe('expected an integer >= 2, got "1"');
    expect(bad(int(), '1e3')).toBe('expected an integer, got "1e3"');
  });

  it('numbers accept decimals within range', () => {
    expect(one(number({ min: 0, max: 2 }), '0.7')).toBe(0.7);
    expect(bad(number({ min: 0, max: 2 }), '2.1')).toBe('expected a number between 0 and 2, got "2.1"');
    expect(bad(number(), 'NaN')).toContain('expected a number');
  });

  it('addresses need a host and a port', () => {
    expect(one(address(), 'prm-scoring.mstar.svc:50051')).toBe('prm-scoring.mstar.svc:50051');
    expect(bad(address(), 'prm-scoring')).toBe('expected host:port, got "prm-scoring"');
    expect(bad(address(), 'h:0')).toBe('expected host:port, got "h:0"');
  });

  it('urls must be absolute', () => {
    expect(one(url(), 'http://a/b')).toBe('http://a/b');
    expect(bad(url(), '/relative')).toBe('expected an absolute URL, got "/relative"');
  });

  it('lists parse each item and say which one is wrong', () => {
    expect(one(list(number()), '0.2, 0.4,0.6 ,')).toEqual([0.2, 0.4, 0.6]);
    expect(bad(list(number()), '0.2,hot')).toBe('item 2: expected a number, got "0.2,hot"');
    expect(bad(list(number()), ' , ')).toBe('expected at least 1 comma-separated item(s), got " , "');
  });

  it('truncates long values in messages', () => {
    expect(bad(port(), 'x'.repeat(100))).toBe(`expected a port number between 0 and 65535, got "${'x'.repeat(60)}..."`);
  });
});

describe('describeConfig', () => {
  it('lists every variable in order with whether it must be set and its default', () => {
    expect(describeConfig(serviceConfig)).toEqual([
      { name: 'GRPC_PORT', presence: 'defaulted', defaultValue: 50051, secret: false },
      { name: 'NATS_URL', presence: 'optional', secret: false },
      { name: 'POLICY_ADDR', presence: 'required', secret: false },
      { name: 'LOG_LEVEL', presence: 'defaulted', defaultValue: 'info', secret: false },
      { name: 'SHUTDOWN_GRACE', presence: 'defaulted', defaultValue: 10_000, secret: false },
      { name: 'USE_GPU', presence: 'defaulted', defaultValue: false, secret: false },
      { name: 'BATCH_SIZE', presence: 'defaulted', defaultValue: 8, secret: false },
    ]);
  });

  it('agrees with loadConfig for plain zod schemas and secrets', () => {
    const cfg = defineConfig({
      A: z.string().min(3),
      B: z.string().optional(),
      C: z.string().default('c'),
      TOKEN: secret(string()),
    });
    expect(describeConfig(cfg).map(({ name, presence, secret: s }) => [name, presence, s])).toEqual([
      ['A', 'required', false],
      ['B', 'optional', false],
      ['C', 'defaulted', false],
      ['TOKEN', 'required', true],
    ]);
    // The required ones are exactly those loadConfig reports as missing from an empty environment.
    expect(errorOf(() => cfg.loadConfig({})).problems.map((p) => p.variable)).toEqual(['A', 'TOKEN']);
  });
});
