export {
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
} from './config.js';
export type {
  ConfigDefinition,
  ConfigOf,
  ConfigProblem,
  ConfigShape,
  ConfigVariable,
  Env,
  RangeOptions,
  VariablePresence,
} from './config.js';
// Services compose their own schemas from these helpers and plain zod, without a zod dependency of their own.
export { z } from 'zod';
