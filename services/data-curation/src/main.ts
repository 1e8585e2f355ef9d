import { runServiceMain } from '@mstar/bootstrap';
import { loadConfig, SERVICE_NAME } from './config.js';
import { startDataCuration } from './server.js';

// Entry point of one instance: config from the environment, metrics on METRICS_PORT, events over
// JetStream and run records in the NATS KV bucket RUN_BUCKET (both need NATS_URL), artifacts under
// ARTIFACT_DIR. SIGTERM / SIGINT stop the stage in flight (its event is redone by the next
// instance), drain gRPC calls, and exit.
const config = loadConfig();
await runServiceMain({
  name: SERVICE_NAME,
  config,
  requiresNats: 'data curation acts on run events and reads run records, both on NATS (start all services in one process with `npm start` instead)',
  runStore: true,
  start: ({ bus, runStore, artifacts, logger, metrics }) => startDataCuration({ config, bus: bus!, runStore: runStore!, artifacts, logger, metrics }),
});
