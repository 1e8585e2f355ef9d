import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceError } from '@grpc/grpc-js';
import { type commonV1, prmV1 } from '@mstar/contracts';
import { splitSteps } from '@mstar/cot';
import { CancelledError, DeadlineExceededError, NotFoundError } from '@mstar/errors';
import { createClient, promiseClient, Status, statusName, type CreateClientOptions, type UnaryCallOptions } from '@mstar/grpc';
import type { EvalItem, Scorer } from '@mstar/recipes';
import { encodePng, type RgbImage } from '@mstar/world';

/** `createClient` options of @mstar/grpc; each defaults to DEFAULT_PRM_CLIENT_OPTIONS. */
export type PrmClientOptions = Partial<CreateClientOptions>;

/** A PRM checkpoint by run and version (the kind is implied). */
export interface PrmVersionRef {
  readonly runId: string;
  readonly version: number;
}

export interface WaitForVersionOptions {
  /** How long to wait in all. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Pause between two GetModelInfo calls; default 200 ms. */
  readonly pollMs?: number;
}

/** A typed client of the PRM scoring service for other teams' code. */
export interface PrmClient {
  /** Scores every target; fails with the call's ServiceError (INVALID_ARGUMENT names the field). */
  scoreSteps(request: Partial<prmV1.ScoreStepsRequest>, options?: UnaryCallOptions): Promise<prmV1.ScoreStepsResponse>;
  getModelInfo(options?: UnaryCallOptions): Promise<prmV1.GetModelInfoResponse>;
  /**
   * Polls GetModelInfo until the replica serves `ref.version` of `ref.runId` or a newer one (what a
   * pipeline stage does right after a CheckpointPublished(PRM) event); resolves with that answer.
   * UNAVAILABLE (nothing loaded yet), NOT_FOUND and a poll's own DEADLINE_EXCEEDED are retried.
   * Throws DeadlineExceededError after `timeoutMs`, NotFoundError when the replica serves another
   * run, the abort reason (or a CancelledError) when `signal` fires, and any other call error as is.
   */
  waitForVersion(ref: PrmVersionRef, options: WaitForVersionOptions): Promise<prmV1.GetModelInfoResponse>;
  close(): void;
}

/** Defaults: 60 s per call (a request of a thousand responses takes seconds on a loaded CPU). */
export const DEFAULT_PRM_CLIENT_OPTIONS: CreateClientOptions = { deadlineMs: 60_000 };

/** The longest single GetModelInfo poll inside waitForVersion. */
const POLL_CALL_DEADLINE_MS = 5_000;
const WAIT_RETRIED = new Set<number>([Status.UNAVAILABLE, Status.NOT_FOUND, Status.DEADLINE_EXCEEDED]);

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new CancelledError('waiting for the PRM version was cancelled', { cause: reason });
}

/**
 * Connects to `address` (`host:port`). Every call carries a deadline, and calls are retried by
 * grpc-js on UNAVAILABLE / RESOURCE_EXHAUSTED (see @mstar/grpc).
 */
export function createPrmClient(address: string, options: PrmClientOptions = {}): PrmClient {
  const raw = createClient(prmV1.PrmScoringServiceClient, address, { ...DEFAULT_PRM_CLIENT_OPTIONS, ...options });
  const unary = promiseClient(raw);
  const getModelInfo = (callOptions?: UnaryCallOptions): Promise<prmV1.GetModelInfoResponse> => unary.getModelInfo({}, callOptions);
  return {
    scoreSteps: (request, callOptions) => unary.scoreSteps(prmV1.ScoreStepsRequest.fromPartial(request), callOptions),
    getModelInfo,
    async waitForVersion(ref, { timeoutMs, signal, pollMs = 200 }) {
      const deadline = Date.now() + timeoutMs;
      let last = 'no answer yet';
      // A function, not a property read, so the check after an await is not narrowed away.
      const aborted = (): boolean => signal?.aborted === true;
      for (;;) {
        if (aborted()) throw abortError(signal as AbortSignal);
        const left = deadline - Date.now();
        if (left <= 0) throw new DeadlineExceededError(`PRM version ${ref.version} of run ${ref.runId} was not served within ${timeoutMs} ms (${last})`);
        let info: prmV1.GetModelInfoResponse | undefined;
        try {
          info = await getModelInfo({ deadlineMs: Math.min(left, POLL_CALL_DEADLINE_MS), ...(signal === undefined ? {} : { signal }) });
        } catch (err) {
          if (aborted()) throw abortError(signal as AbortSignal);
          const code = (err as Partial<ServiceError>).code;
          if (code === undefined || !WAIT_RETRIED.has(code)) throw err;
          last = `last answer ${statusName(code)}`;
        }
        const served = info?.prm;
        if (served !== undefined) {
          if (ref.runId !== '' && served.runId !== ref.runId) {
            throw new NotFoundError(`the replica serves the PRM of run ${served.runId}, not of run ${ref.runId}`);
          }
          if (served.version >= ref.version) return info as prmV1.GetModelInfoResponse;
          last = `serving version ${served.version}`;
        }
        await sleep(Math.max(0, Math.min(pollMs, deadline - Date.now())), undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
      }
    },
    close: () => raw.close(),
  };
}

export interface PrmScorerOptions {
  /** Pins the PRM version (NOT_FOUND when the replica no longer serves it); current when unset. */
  readonly prm?: commonV1.CheckpointRef;
  readonly aggregation: commonV1.Aggregation;
  /** How the item's image is sent; PNG (`@mstar/world` encodePng) by default. */
  readonly encodeImage?: (image: RgbImage) => Uint8Array;
  /** Per-call options (deadline, metadata, cancellation) of each ScoreSteps call. */
  readonly callOptions?: UnaryCallOptions;
}

/**
 * A `@mstar/recipes` Scorer backed by the service: one ScoreSteps call per item with its image and
 * question, returning each response's aggregate score. Reward-Pass@k ranks ALL samples of a
 * prompt, malformed ones included, so a response the service would refuse for having no steps
 * gets `-Infinity` here instead of failing the call: it ranks below every real score (all of
 * which are in [0, 1]). It is a rank, not a score; do not average it.
 */
export function prmScorer(client: Pick<PrmClient, 'scoreSteps'>, options: PrmScorerOptions): Scorer {
  const encode = options.encodeImage ?? encodePng;
  return async (item: EvalItem, responses: readonly string[]) => {
    const scores = responses.map(() => Number.NEGATIVE_INFINITY);
    const scorable = responses.flatMap((r, i) => (splitSteps(r).length > 0 ? [i] : []));
    if (scorable.length === 0) return scores;
    const answer = await client.scoreSteps(
      {
        prompts: [{ promptId: item.id, image: Buffer.from(encode(item.image)), question: item.question, responsePrefix: '' }],
        targets: scorable.map((i) => ({ promptIndex: 0, response: responses[i] as string })),
        aggregation: options.aggregation,
        prm: options.prm,
      },
      options.callOptions,
    );
    if (answer.scores.length !== scorable.length) throw new Error(`ScoreSteps answered ${answer.scores.length} scores for ${scorable.length} responses`);
    for (const s of answer.scores) {
      const at = scorable[s.targetIndex];
      if (at === undefined) throw new Error(`ScoreSteps answered target_index ${s.targetIndex} for ${scorable.length} targets`);
      scores[at] = s.aggregateScore;
    }
    return scores;
  };
}
