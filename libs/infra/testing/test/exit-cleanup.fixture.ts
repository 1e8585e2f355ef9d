// Run as a child process by nats-server.test.ts: starts a server and exits without stopping it.
import { startNatsServer } from '../src/nats-server.js';

const server = await startNatsServer();
process.stdout.write(`${JSON.stringify({ port: server.port, storeDir: server.storeDir })}\n`);
process.exit(0);
