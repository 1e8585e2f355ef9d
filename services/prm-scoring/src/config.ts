import { fileURLToPath } from 'node:url';
import { defineConfig, durationMs, int, oneOf, port, string, url, type ConfigOf } from '@mstar/config';

// src/ and dist/ sit at the same depth, so the repository's proto/ folder is three levels up from either.
const DEFAULT_PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

/** Every setting of the service, read from the environment once (see the README's table). */
export const prmScoringConfig = defineConfig({
  GRPC_PORT: port().default(50052),
  METRICS_PORT: port().default(9464),
  LOG_LEVEL: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  NATS_URL: url({ protocols: ['nats', 'tls'] }).optional(),
  ARTIFACT_DIR: string().default('./artifacts'),
  RUN_ID: string().optional(),
  INITIAL_CHECKPOINT: string().optional(),
  INITIAL_VERSION: int({ min: 0 }).default(0),
  REPLICA_ID: string().default('0'),
  PROTO_DIR: string().default(DEFAULT_PROTO_DIR),
  DEVICE: oneOf(['cpu', 'cuda', 'auto']).default('cpu'),
  WORKERS: int({ min: 1, max: 64 }).default(1),
  INTRA_OP_THREADS: int({ min: 1, max: 256 }).default(2),
  MAX_QUEUE: int({ min: 1 }).default(64),
  MAX_BATCH_RESPONSES: int({ min: 1 }).default(64),
  MAX_TARGETS: int({ min: 1 }).default(1024),
  MAX_IMAGE_BYTES: int({ min: 1 }).default(1_048_576),
  MAX_QUESTION_CHARS: int({ min: 1 }).default(2_000),
  RETAINED_VERSIONS: int({ min: 1 }).default(2),
  SHUTDOWN_GRACE: durationMs().default(20_000),
});

export type PrmScoringConfig = ConfigOf<typeof prmScoringConfig.shape>;

/** `loadConfig(env = process.env)`: throws one ConfigError listing every bad variable. */
export function loadConfig(env?: Readonly<Record<string, string | undefined>>): PrmScoringConfig {
  return prmScoringConfig.loadConfig(env);
}
