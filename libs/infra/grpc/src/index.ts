export { callSignal, msUntilDeadline, serverStream, unary } from './handlers.js';
export type { ServerStreamHandler, UnaryHandler } from './handlers.js';
export { GrpcStatusError, INTERNAL_ERROR_MESSAGE, Status, statusName, toGrpcStatus } from './status.js';
export { HEALTH_SERVICE_NAME, LIVENESS_HEALTH_NAME, loadProtoPackageDefinition, serviceNameOf, startGrpcServer } from './server.js';
export type { GrpcServiceRegistration, PackageDefinition, RunningGrpcServer, StartGrpcServerOptions } from './server.js';
export {
  clientServiceConfig,
  createClient,
  deadlineInterceptor,
  DEFAULT_KEEPALIVE,
  DEFAULT_RETRY,
  promiseClient,
  promisifyUnary,
  RETRYABLE_STATUS_CODES,
  retryServiceConfig,
} from './client.js';
export type {
  CreateClientOptions,
  GrpcClientConstructor,
  KeepaliveOptions,
  LoadBalancingPolicy,
  PromiseClient,
  PromiseUnary,
  RetryOptions,
  UnaryCallOptions,
  UnaryMethod,
} from './client.js';
