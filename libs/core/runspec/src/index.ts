/**
 * @mstar/runspec: the run specification in code — parsing a YAML run file (defaults from the
 * proto's documentation), validation naming the setting, and the derived quantities every
 * service must agree on (temperature grid, pool slices, sweep schedule, store keys).
 */
export { MAX_POOL_SIZE, MAX_SPEC_TEMPERATURE, intervalSize, poolSlice, sweepsBefore, temperatureGrid, validateRunSpec } from './spec.js';
export type { ResolvedRunSpec } from './spec.js';
export { RUN_SPEC_KEYS, SPEC_FILE_DEFAULTS, formatRunSpec, parseRunSpec } from './yaml.js';
export { RUN_RECORDS_PREFIX, runArtifacts, runRecordKey } from './keys.js';
