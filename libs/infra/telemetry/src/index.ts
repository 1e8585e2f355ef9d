export { createLogger, isLogLevel } from './logger.js';
export type { CreateLoggerOptions, Logger, LogLevel } from './logger.js';
export { createMetrics, startMetricsServer } from './metrics.js';
export type { CreateMetricsOptions, MetricConfig, Metrics, MetricsServer, StartMetricsServerOptions } from './metrics.js';
