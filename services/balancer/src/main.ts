import { runServiceMain } from '@mstar/bootstrap';
import { loadConfig } from './config.js';
import { SERVICE_NAME, startBalancer } from './server.js';

// Entry point of the balancer: config from the environment, metrics on METRICS_PORT, events over
// JetStream and run records in the NATS KV bucket RUN_BUCKET (both need NATS_URL), artifacts at
// ARTIFACT_DIR; SIGTERM / SIGINT end watches, drain calls and stop the consumers.
const config = loadConfig();
await runServiceMain({
  name: SERVICE_NAME,
  config,
  requiresNats: 'the balancer needs the event bus and the run store (start all services in one process with `npm start` instead)',
  runStore: true,
  start: ({ bus, runStore, artifacts, logger, metrics }) => startBalancer({ config, bus: bus!, runStore: runStore!, artifacts, logger, metrics }),
});
