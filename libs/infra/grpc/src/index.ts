export { callSignal, msUntilDeadline, serverStream, unary } from './handlers.js';
export type { ServerStreamHandler, UnaryHandler } from './handlers.js';
export { GrpcStatusError, INTERNAL_ERROR_MESSAGE, Status, statusName, toGrpcStatus } from './status.js';
export { HEALTH_SERVICE_NAME, loadProtoPackageDefinition, serviceNameOf, startGrpcServer } from './server.js';
export type { GrpcServiceRegistration, PackageDefinition, RunningGrpcServer, StartGrpcServerOptions } from './server.js';
export {
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
  PromiseClient,
  PromiseUnary,
  RetryOptions,
  UnaryCallOptions,
  UnaryMethod,
} from './client.js';
