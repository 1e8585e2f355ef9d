export * from './nats-server.js';
export * from './grpc.js';
export * from './events.js';
