import { runServiceMain } from '@mstar/bootstrap';
import { loadConfig } from './config.js';
import { SERVICE_NAME, startPolicyInference } from './server.js';

// Entry point of one replica: config from the environment, metrics on METRICS_PORT, events over
// JetStream when NATS_URL is set (RUN_ID's checkpoints), SIGTERM / SIGINT drain in-flight calls and then stop.
const config = loadConfig();
await runServiceMain({
  name: SERVICE_NAME,
  config,
  start: ({ bus, artifacts, logger, metrics }) => startPolicyInference({ config, bus, artifacts, logger, metrics }),
});
