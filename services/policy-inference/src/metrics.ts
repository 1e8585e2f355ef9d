import type { Metrics } from '@mstar/telemetry';

/** The service's own Prometheus metrics (the gRPC server adds its per-call ones). */
export interface PolicyMetrics {
  queueDepth(depth: number): void;
  wave(stats: { requests: number; rows: number; generatedTokens: number; seconds: number }): void;
  request(method: string, seconds: number): void;
  loadedVersion(version: number): void;
}

export function createPolicyMetrics(metrics: Metrics): PolicyMetrics {
  const queue = metrics.gauge({ name: 'mstar_policy_queue_depth', help: 'Requests waiting for a generation wave' });
  const waveRows = metrics.histogram({
    name: 'mstar_policy_wave_rows',
    help: 'Decoder rows (prompts x samples) per generation wave',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  });
  const waveRequests = metrics.histogram({ name: 'mstar_policy_wave_requests', help: 'Requests batched into one generation wave', buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32] });
  const waveSeconds = metrics.histogram({ name: 'mstar_policy_wave_seconds', help: 'Duration of one generation wave', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
  const tokens = metrics.counter({ name: 'mstar_policy_generated_tokens_total', help: 'Tokens sampled, end-of-sequence tokens included' });
  const tokensPerSecond = metrics.gauge({ name: 'mstar_policy_tokens_per_second', help: 'Generated tokens per second of the last wave' });
  const requestSeconds = metrics.histogram({
    name: 'mstar_policy_request_seconds',
    help: 'Latency of generation requests from arrival to the last completion',
    labelNames: ['method'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  });
  const version = metrics.gauge({ name: 'mstar_policy_loaded_version', help: 'Newest policy version loaded' });
  return {
    queueDepth: (depth) => queue.set(depth),
    wave(stats) {
      waveRows.observe(stats.rows);
      waveRequests.observe(stats.requests);
      waveSeconds.observe(stats.seconds);
      tokens.inc(stats.generatedTokens);
      if (stats.seconds > 0) tokensPerSecond.set(stats.generatedTokens / stats.seconds);
    },
    request: (method, seconds) => requestSeconds.observe({ method }, seconds),
    loadedVersion: (v) => version.set(v),
  };
}
