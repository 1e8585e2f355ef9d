import { runServiceMain } from '@mstar/bootstrap';
import { loadConfig } from './config.js';
import { SERVICE_NAME, startPrmScoring } from './server.js';

// Entry point of one replica: config from the environment, metrics on METRICS_PORT, events over
// JetStream when NATS_URL is set (RUN_ID's PRM checkpoints), SIGTERM / SIGINT drain in-flight calls and then stop.
const config = loadConfig();
await runServiceMain({
  name: SERVICE_NAME,
  config,
  start: ({ bus, artifacts, logger, metrics }) => startPrmScoring({ config, bus, artifacts, logger, metrics }),
});
