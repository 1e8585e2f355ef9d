export * from './nats-server.js';
export * from './grpc.js';
