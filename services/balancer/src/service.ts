import type { balancerV1 } from '@mstar/contracts';
import { UnavailableError } from '@mstar/errors';
import { serverStream, unary } from '@mstar/grpc';
import { cancelRun, getRunResponse, getTemperature, listIterationStats, listRuns, startRun, type RunControlDeps } from './run-control.js';
import { watchRun, type WatchDeps } from './watch.js';

export interface BalancerServiceDeps extends RunControlDeps, WatchDeps {
  /** Fires when the service stops: open WatchRun streams end with UNAVAILABLE so clients watch again elsewhere. */
  readonly closing: AbortSignal;
}

/** The gRPC handlers of `mstar.balancer.v1.BalancerService`. */
export function createBalancerService(deps: BalancerServiceDeps): balancerV1.BalancerServiceServer {
  return {
    startRun: unary((request) => startRun(deps, request)),
    getRun: unary((request) => getRunResponse(deps, request)),
    listRuns: unary((request) => listRuns(deps, request)),
    watchRun: serverStream(async (request, call, signal) => {
      await watchRun(deps, request.runId, (response) => call.write(response), AbortSignal.any([signal, deps.closing]));
      if (deps.closing.aborted) throw new UnavailableError('the balancer is shutting down; watch the run again');
    }),
    cancelRun: unary((request) => cancelRun(deps, request)),
    getTemperature: unary((request) => getTemperature(deps, request)),
    listIterationStats: unary((request) => listIterationStats(deps, request)),
  };
}
