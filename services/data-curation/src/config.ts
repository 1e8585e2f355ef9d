import { fileURLToPath } from 'node:url';
import { address, defineConfig, durationMs, int, oneOf, port, string, url, type ConfigOf } from '@mstar/config';

/** The name bound into logs, metrics and the `source` of every event this service emits. */
export const SERVICE_NAME = 'data-curation';

// src/ and dist/ sit at the same depth, so the repository's proto/ folder is three levels up from either.
const DEFAULT_PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

/** Every setting of the service, read from the environment once (see the README's table). */
export const dataCurationConfig = defineConfig({
  GRPC_PORT: port().default(50053),
  METRICS_PORT: port().default(9464),
  LOG_LEVEL: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  NATS_URL: url({ protocols: ['nats', 'tls'] }).optional(),
  RUN_BUCKET: string().default('mstar-runs'),
  ARTIFACT_DIR: string().default('./artifacts'),
  PROTO_DIR: string().default(DEFAULT_PROTO_DIR),
  SHUTDOWN_GRACE: durationMs().default(20_000),
  POLICY_ADDRESS: address().default('localhost:50051'),
  PRM_ADDRESS: address().default('localhost:50052'),
  PROMPTS_PER_CALL: int({ min: 1, max: 256 }).default(16),
  VERSION_WAIT: durationMs().default(600_000),
});

export type DataCurationConfig = ConfigOf<typeof dataCurationConfig.shape>;

/** `loadConfig(env = process.env)`: throws one ConfigError listing every bad variable. */
export function loadConfig(env?: Readonly<Record<string, string | undefined>>): DataCurationConfig {
  return dataCurationConfig.loadConfig(env);
}
