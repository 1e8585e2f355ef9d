import type { Metadata } from '@grpc/grpc-js';
import { policyV1 } from '@mstar/contracts';
import { createClient, promiseClient, type CreateClientOptions, type UnaryCallOptions } from '@mstar/grpc';

/** `createClient` options of @mstar/grpc; each defaults to DEFAULT_POLICY_CLIENT_OPTIONS. */
export type PolicyClientOptions = Partial<CreateClientOptions>;

export interface StreamCallOptions {
  /** Overrides the client's streaming deadline for this call. */
  deadlineMs?: number;
  metadata?: Metadata;
  /** Cancels the call: the iterator then throws a CANCELLED ServiceError. */
  signal?: AbortSignal;
}

/** A typed client of the policy inference service for other teams' code. */
export interface PolicyClient {
  /** The completions of a Generate call, in completion order; fails with the call's ServiceError. */
  generate(request: Partial<policyV1.GenerateRequest>, options?: StreamCallOptions): AsyncIterable<policyV1.Completion>;
  /** One greedy completion per prompt, in request order. */
  generateGreedy(request: Partial<policyV1.GenerateGreedyRequest>, options?: UnaryCallOptions): Promise<policyV1.Completion[]>;
  getModelInfo(options?: UnaryCallOptions): Promise<policyV1.GetModelInfoResponse>;
  close(): void;
}

/** Defaults: 10 s for unary calls, 10 min for streams (a big sampling request takes minutes). */
export const DEFAULT_POLICY_CLIENT_OPTIONS: CreateClientOptions = { deadlineMs: 10_000, streamDeadlineMs: 600_000 };

/**
 * Connects to `address` (`host:port`). Every call carries a deadline, and calls are retried by
 * grpc-js on UNAVAILABLE / RESOURCE_EXHAUSTED before their first response (see @mstar/grpc).
 */
export function createPolicyClient(address: string, options: PolicyClientOptions = {}): PolicyClient {
  const raw = createClient(policyV1.PolicyInferenceServiceClient, address, { ...DEFAULT_POLICY_CLIENT_OPTIONS, ...options });
  const unary = promiseClient(raw);
  return {
    async *generate(request, callOptions = {}) {
      const { signal } = callOptions;
      const call = raw.generate(
        policyV1.GenerateRequest.fromPartial(request),
        ...(callOptions.metadata === undefined ? [] : [callOptions.metadata]),
        callOptions.deadlineMs === undefined ? {} : { deadline: Date.now() + callOptions.deadlineMs },
      );
      const onAbort = (): void => call.cancel();
      if (signal?.aborted === true) call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const response of call as AsyncIterable<policyV1.GenerateResponse>) {
          if (response.completion !== undefined) yield response.completion;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // A consumer that stops iterating early must not leave the server sampling for nobody.
        call.cancel();
      }
    },
    async generateGreedy(request, callOptions) {
      const response = await unary.generateGreedy(policyV1.GenerateGreedyRequest.fromPartial(request), callOptions);
      return response.completions;
    },
    getModelInfo: (callOptions) => unary.getModelInfo({}, callOptions),
    close: () => raw.close(),
  };
}
