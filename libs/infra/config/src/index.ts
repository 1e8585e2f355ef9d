export {
  address,
  bool,
  ConfigError,
  defineConfig,
  durationMs,
  int,
  list,
  number,
  oneOf,
  port,
  secret,
  string,
  url,
} from './config.js';
export type { ConfigDefinition, ConfigOf, ConfigProblem, ConfigShape, Env, RangeOptions } from './config.js';
// Services compose their own schemas from these helpers and plain zod, without a zod dependency of their own.
export { z } from 'zod';
