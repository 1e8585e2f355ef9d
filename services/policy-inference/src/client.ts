import { setTimeout as sleep } from 'node:timers/promises';
import type { Metadata } from '@grpc/grpc-js';
import { policyV1, type commonV1 } from '@mstar/contracts';
import { CancelledError, DeadlineExceededError } from '@mstar/errors';
import { createClient, promiseClient, type CreateClientOptions, type UnaryCallOptions } from '@mstar/grpc';
import { deriveSeed } from '@mstar/metrics';
import type { ResponseSampler, SampledResponse } from '@mstar/recipes';
import { encodePng } from '@mstar/world';

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
  /**
   * One greedy completion per prompt, in request order. A unary call, but generation work like a
   * sampling stream, so its deadline defaults to the client's streaming one: a batch of long answers
   * (e.g. 64 tallied chains) takes more than the unary 10 s on a CPU.
   */
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
  const resolved = { ...DEFAULT_POLICY_CLIENT_OPTIONS, ...options };
  const raw = createClient(policyV1.PolicyInferenceServiceClient, address, resolved);
  const generationDeadlineMs = resolved.streamDeadlineMs ?? resolved.deadlineMs;
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
    async generateGreedy(request, callOptions = {}) {
      const response = await unary.generateGreedy(policyV1.GenerateGreedyRequest.fromPartial(request), {
        ...callOptions,
        deadlineMs: callOptions.deadlineMs ?? generationDeadlineMs,
      });
      return response.completions;
    },
    getModelInfo: (callOptions) => unary.getModelInfo({}, callOptions),
    close: () => raw.close(),
  };
}

export interface WaitOptions {
  /** Give up after this long (default 10 min: a replica may be loading a big checkpoint). */
  readonly timeoutMs?: number;
  /** Poll period (default 250 ms). */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Resolves once the replica behind `client` serves `ref`'s run at `ref.version` or newer — what a
 * caller does right after a CheckpointPublished event, before pinning that version. Replicas that
 * are still starting (UNAVAILABLE, or no policy yet) are polled again; DeadlineExceededError after
 * `timeoutMs`, CancelledError when `signal` aborts.
 */
export async function waitForPolicyVersion(client: Pick<PolicyClient, 'getModelInfo'>, ref: PolicyVersionRef, options: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  let last = 'no answer yet';
  for (;;) {
    if (options.signal?.aborted === true) throw new CancelledError(`stopped waiting for policy ${ref.runId} v${ref.version}`, { cause: options.signal.reason });
    try {
      const served = (await client.getModelInfo({ deadlineMs: 5_000 })).policy;
      if (served?.runId === ref.runId && served.version >= ref.version) return;
      last = served === undefined ? 'no policy loaded' : `serving ${served.runId} v${served.version}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) throw new DeadlineExceededError(`policy ${ref.runId} v${ref.version} was not served within ${options.timeoutMs ?? 600_000} ms (${last})`);
    await sleep(options.intervalMs ?? 250, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(() => undefined);
  }
}

/** A run and policy version, as in a CheckpointRef. */
export interface PolicyVersionRef {
  readonly runId: string;
  readonly version: number;
}

/**
 * A @mstar/recipes ResponseSampler over the service: the evaluation harness (and anything else
 * written against samplers) runs against a deployed policy. Temperature 0 uses GenerateGreedy.
 * Item images travel as PNG; responses come back as [item][sample]. `policy` pins a version.
 */
export function remoteSampler(client: PolicyClient, options: { readonly policy?: commonV1.CheckpointRef } = {}): ResponseSampler {
  return async (request) => {
    const prompts = request.items.map((item) => ({ promptId: item.id, image: Buffer.from(encodePng(item.image)), question: item.question, responsePrefix: '' }));
    const seed = typeof request.seed === 'number' && Number.isInteger(request.seed) && request.seed >= 0 ? request.seed >>> 0 : deriveSeed(request.seed);
    const call = request.signal === undefined ? {} : { signal: request.signal };
    const out: SampledResponse[][] = request.items.map(() => []);
    const put = (c: policyV1.Completion): void => {
      out[c.promptIndex]![c.sampleIndex] = { text: c.text, tokens: c.tokenCount, truncated: c.finishReason === policyV1.FinishReason.LENGTH };
    };
    if (request.temperature === 0) {
      const completions = await client.generateGreedy({ prompts, maxNewTokens: request.maxNewTokens, policy: options.policy }, call);
      completions.forEach(put);
    } else {
      const stream = client.generate(
        { prompts, numSamples: request.numSamples, temperature: request.temperature, topP: request.topP, maxNewTokens: request.maxNewTokens, seed, policy: options.policy },
        call,
      );
      for await (const completion of stream) put(completion);
    }
    const expected = request.temperature === 0 ? 1 : request.numSamples;
    out.forEach((samples, i) => {
      if (samples.length !== expected || samples.some((s) => s === undefined)) {
        throw new Error(`policy service returned ${samples.filter(Boolean).length} of ${expected} completions for prompt ${request.items[i]!.id}`);
      }
    });
    return out;
  };
}
