import { fileURLToPath } from 'node:url';
import { address, defineConfig, durationMs, int, oneOf, port, string, url, type ConfigOf } from '@mstar/config';

// src/ and dist/ sit at the same depth, so the repository's proto/ folder is three levels up from either.
const DEFAULT_PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

/** Every setting of the service, read from the environment once (see the README's table). */
export const balancerConfig = defineConfig({
  GRPC_PORT: port().default(50055),
  METRICS_PORT: port().default(9464),
  LOG_LEVEL: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  NATS_URL: url({ protocols: ['nats', 'tls'] }).optional(),
  RUN_BUCKET: string().default('mstar-runs'),
  ARTIFACT_DIR: string().default('./artifacts'),
  PROTO_DIR: string().default(DEFAULT_PROTO_DIR),
  SHUTDOWN_GRACE: durationMs().default(20_000),
  POLICY_ADDRESS: address().default('127.0.0.1:50051'),
  PRM_ADDRESS: address().default('127.0.0.1:50052'),
  VERSION_WAIT: durationMs().default(600_000),
  PROMPTS_PER_CALL: int({ min: 1, max: 256 }).default(8),
  SCORE_CONCURRENCY: int({ min: 1, max: 64 }).default(4),
});

export type BalancerConfig = ConfigOf<typeof balancerConfig.shape>;

/** `loadConfig(env = process.env)`: throws one ConfigError listing every bad variable. */
export function loadConfig(env?: Readonly<Record<string, string | undefined>>): BalancerConfig {
  return balancerConfig.loadConfig(env);
}
