import { runServiceMain } from '@mstar/bootstrap';
import { loadConfig } from './config.js';
import { SERVICE_NAME, startTrainer } from './server.js';

// Entry point of the trainer process: config from the environment, metrics on METRICS_PORT, events
// over JetStream and run records in the NATS KV bucket RUN_BUCKET (both need NATS_URL), artifacts
// under ARTIFACT_DIR. SIGTERM / SIGINT: the step in flight finishes, the stage's event goes back
// unacked (redone after a restart), then everything stops.
const config = loadConfig();
await runServiceMain({
  name: SERVICE_NAME,
  config,
  requiresNats: 'the trainer reacts to run events and needs JetStream and the run store (start all services in one process with `npm start` instead)',
  runStore: true,
  start: ({ bus, runStore, artifacts, logger, metrics }) => startTrainer({ config, bus: bus!, runStore: runStore!, artifacts, logger, metrics }),
});
