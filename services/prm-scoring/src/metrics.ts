import type { Metrics } from '@mstar/telemetry';

/** One graph run of the scorer. */
export interface BatchStats {
  /** Requests whose responses share the run. */
  readonly requests: number;
  /** Responses (rows) in the run. */
  readonly rows: number;
  /** Model positions that hold a real token (image tokens included). */
  readonly tokens: number;
  /** rows x padded sequence length: what the graph computed. */
  readonly paddedTokens: number;
  readonly seconds: number;
}

/** The service's own Prometheus metrics (the gRPC server adds its per-call ones). */
export interface PrmMetrics {
  queueDepth(depth: number): void;
  batch(stats: BatchStats): void;
  request(method: string, seconds: number, responses: number): void;
  loadedVersion(version: number): void;
}

export function createPrmMetrics(metrics: Metrics): PrmMetrics {
  const queue = metrics.gauge({ name: 'mstar_prm_queue_depth', help: 'ScoreSteps requests with responses waiting for a batch' });
  const batchRows = metrics.histogram({ name: 'mstar_prm_batch_rows', help: 'Responses scored by one graph run', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256] });
  const batchRequests = metrics.histogram({ name: 'mstar_prm_batch_requests', help: 'Requests sharing one graph run', buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32] });
  const batchSeconds = metrics.histogram({ name: 'mstar_prm_batch_seconds', help: 'Duration of one graph run', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
  const tokens = metrics.counter({ name: 'mstar_prm_scored_tokens_total', help: 'Real (unpadded) model positions scored, image tokens included' });
  const padded = metrics.counter({ name: 'mstar_prm_padded_tokens_total', help: 'Model positions computed, padding included' });
  const tokensPerSecond = metrics.gauge({ name: 'mstar_prm_tokens_per_second', help: 'Real tokens per second of the last graph run' });
  const responses = metrics.counter({ name: 'mstar_prm_scored_responses_total', help: 'Responses scored' });
  const requestSeconds = metrics.histogram({
    name: 'mstar_prm_request_seconds',
    help: 'Latency of requests from arrival to the answer',
    labelNames: ['method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  const version = metrics.gauge({ name: 'mstar_prm_loaded_version', help: 'Newest PRM version loaded' });
  return {
    queueDepth: (depth) => queue.set(depth),
    batch(stats) {
      batchRows.observe(stats.rows);
      batchRequests.observe(stats.requests);
      batchSeconds.observe(stats.seconds);
      tokens.inc(stats.tokens);
      padded.inc(stats.paddedTokens);
      if (stats.seconds > 0) tokensPerSecond.set(stats.tokens / stats.seconds);
    },
    request(method, seconds, n) {
      requestSeconds.observe({ method }, seconds);
      responses.inc(n);
    },
    loadedVersion: (v) => version.set(v),
  };
}
