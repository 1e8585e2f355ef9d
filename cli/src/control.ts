import { balancerV1, type eventsV1, type runV1 } from '@mstar/contracts';
import { createClient, promiseClient, type UnaryCallOptions } from '@mstar/grpc';

/** Run control over the balancer's gRPC API (what `mstar run ...` and `npm start` drive). */
export interface RunControl {
  startRun(spec: runV1.RunSpec, options?: { runId?: string; idempotencyKey?: string }): Promise<{ run: runV1.Run; created: boolean }>;
  getRun(runId: string, options?: UnaryCallOptions): Promise<runV1.Run>;
  listRuns(state?: runV1.RunState): Promise<runV1.Run[]>;
  cancelRun(runId: string, reason: string): Promise<runV1.Run>;
  /** The run record after each change and each event of the run, until the run is terminal. */
  watchRun(runId: string, signal?: AbortSignal): AsyncIterable<{ run?: runV1.Run; event?: eventsV1.Event }>;
  close(): void;
}

/** Connects to the balancer at `address` (host:port or a grpc-js target such as dns:///balancer:50055). */
export function connectRunControl(address: string): RunControl {
  // A watch lasts as long as the run: its stream deadline is a day.
  const raw = createClient(balancerV1.BalancerServiceClient, address, { deadlineMs: 30_000, streamDeadlineMs: 86_400_000 });
  const unary = promiseClient(raw);
  const required = (run: runV1.Run | undefined, what: string): runV1.Run => {
    if (run === undefined) throw new Error(`the balancer answered ${what} without a run`);
    return run;
  };
  return {
    async startRun(spec, options = {}) {
      const response = await unary.startRun({ spec, runId: options.runId ?? '', idempotencyKey: options.idempotencyKey ?? '' });
      return { run: required(response.run, 'StartRun'), created: response.created };
    },
    async getRun(runId, options) {
      return required((await unary.getRun({ runId }, options)).run, 'GetRun');
    },
    async listRuns(state = 0) {
      const runs: runV1.Run[] = [];
      let pageToken = '';
      do {
        const page = await unary.listRuns({ state, pageSize: 100, pageToken });
        runs.push(...page.runs);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return runs;
    },
    async cancelRun(runId, reason) {
      return required((await unary.cancelRun({ runId, reason })).run, 'CancelRun');
    },
    async *watchRun(runId, signal) {
      const call = raw.watchRun({ runId });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const message of call as AsyncIterable<balancerV1.WatchRunResponse>) {
          yield { ...(message.run === undefined ? {} : { run: message.run }), ...(message.event === undefined ? {} : { event: message.event }) };
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
      }
    },
    close: () => raw.close(),
  };
}
