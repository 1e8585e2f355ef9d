import { createHash, randomBytes } from 'node:crypto';
import { assertValidRunId, commonV1, runV1, type balancerV1 } from '@mstar/contracts';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { createRun, findRun, getRun, isTerminal, updateRun } from '@mstar/runs';
import { RUN_RECORDS_PREFIX, validateRunSpec, type ResolvedRunSpec } from '@mstar/runspec';
import type { ArtifactStore, RunStore } from '@mstar/stores';
import { runFinishedPayload, type Publish } from './publish.js';
import { readEvaluation } from './records.js';
import { specOf } from './run-record.js';

export interface RunControlDeps {
  readonly runStore: RunStore;
  readonly artifacts: ArtifactStore;
  readonly publish: Publish;
  readonly now?: (() => Date) | undefined;
}

const MAX_IDEMPOTENCY_KEY = 128;
/** CancelRunRequest.reason's limit, in characters (UTF-16 code units, as the check counts them). */
const MAX_CANCEL_REASON = 1024;
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/**
 * A reason that fits CancelRun's limit: as given when it does, else cut to end in '…' within the
 * limit, never between the two halves of a surrogate pair.
 */
export function fitCancelReason(reason: string): string {
  if (reason.length <= MAX_CANCEL_REASON) return reason;
  const end = MAX_CANCEL_REASON - 1;
  const lead = reason.charCodeAt(end - 1);
  return `${reason.slice(0, lead >= 0xd800 && lead <= 0xdbff ? end - 1 : end)}…`;
}

/**
 * The id of a run started without one: derived from the idempotency key when there is one (so a
 * retried call lands on the same record and no lookup by key is needed), random otherwise.
 */
export function generatedRunId(idempotencyKey: string): string {
  const entropy = idempotencyKey === '' ? randomBytes(8).toString('hex') : createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16);
  return `run-${entropy}`;
}

function checkedSpec(spec: runV1.RunSpec | undefined): ResolvedRunSpec {
  if (spec === undefined) throw new InvalidArgumentError('spec is required', { field: 'spec' });
  try {
    return validateRunSpec(spec);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new InvalidArgumentError(`spec.${error.message}`, { field: `spec.${error.field ?? ''}`.replace(/\.$/, ''), cause: error });
  }
}

const sameSpec = (a: runV1.RunSpec | undefined, b: runV1.RunSpec): boolean =>
  a !== undefined && Buffer.compare(runV1.RunSpec.encode(a).finish(), runV1.RunSpec.encode(b).finish()) === 0;

/** StartRun: validate, create the record (RUNNING, WARMUP), emit RunStarted. */
export async function startRun(deps: RunControlDeps, request: balancerV1.StartRunRequest): Promise<balancerV1.StartRunResponse> {
  const spec = checkedSpec(request.spec);
  const key = request.idempotencyKey;
  if (key.length > MAX_IDEMPOTENCY_KEY) {
    throw new InvalidArgumentError(`idempotency_key must be at most ${MAX_IDEMPOTENCY_KEY} characters, got ${key.length}`, { field: 'idempotency_key' });
  }
  if (request.runId !== '') assertValidRunId(request.runId, 'run_id');
  const runId = request.runId === '' ? generatedRunId(key) : request.runId;
  const at = (deps.now ?? ((): Date => new Date()))();
  const run: runV1.Run = {
    runId,
    spec,
    state: runV1.RunState.RUNNING,
    stage: commonV1.Stage.WARMUP,
    iteration: 0,
    temperature: undefined,
    errorMessage: '',
    createdAt: at,
    updatedAt: at,
    finishedAt: undefined,
    summary: [],
    idempotencyKey: key,
  };
  try {
    await createRun(deps.runStore, run);
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
    const existing = await getRun(deps.runStore, runId);
    if (existing.idempotencyKey !== key || !sameSpec(existing.spec, spec)) {
      const what = existing.idempotencyKey !== key ? 'idempotency key' : 'spec';
      throw new AlreadyExistsError(`run ${runId} already exists with a different ${what}`, { cause: error });
    }
    // A retry of a call that created the run: publishing again covers a first call that stopped
    // between the record and the event (the bus drops the duplicate otherwise).
    if (!isTerminal(existing.state)) await deps.publish(runId, { $case: 'runStarted', value: { spec } });
    return { run: existing, created: false };
  }
  await deps.publish(runId, { $case: 'runStarted', value: { spec } });
  return { run, created: true };
}

export async function getRunResponse(deps: RunControlDeps, request: balancerV1.GetRunRequest): Promise<balancerV1.GetRunResponse> {
  return { run: await getRun(deps.runStore, request.runId) };
}

interface PageCursor {
  /** created_at (ms) and run id of the last run of the previous page. */
  readonly t: number;
  readonly id: string;
}

function decodePageToken(token: string): PageCursor {
  const bad = (): never => {
    throw new InvalidArgumentError('page_token is not a token returned by ListRuns', { field: 'page_token' });
  };
  let cursor: unknown;
  try {
    cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return bad();
  }
  const c = cursor as Partial<PageCursor> | null;
  if (typeof c !== 'object' || c === null || typeof c.t !== 'number' || !Number.isFinite(c.t) || typeof c.id !== 'string') return bad();
  return { t: c.t, id: c.id };
}

const encodePageToken = (cursor: PageCursor): string => Buffer.from(JSON.stringify(cursor)).toString('base64url');
const createdMs = (run: runV1.Run): number => run.createdAt?.getTime() ?? 0;
/** Newest first; equal creation times by run id, so the order (and the cursor) is total. */
const newestFirst = (a: runV1.Run, b: runV1.Run): number => createdMs(b) - createdMs(a) || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0);

/** ListRuns: newest first, filtered by state, paged by a cursor (stable while runs are added). */
export async function listRuns(deps: RunControlDeps, request: balancerV1.ListRunsRequest): Promise<balancerV1.ListRunsResponse> {
  if (request.pageSize > MAX_PAGE_SIZE) throw new InvalidArgumentError(`page_size must be at most ${MAX_PAGE_SIZE}, got ${request.pageSize}`, { field: 'page_size' });
  if (request.state !== runV1.RunState.UNSPECIFIED && runV1.RunState[request.state] === undefined) {
    throw new InvalidArgumentError(`state ${request.state} is not a run state`, { field: 'state' });
  }
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
  const cursor = request.pageToken === '' ? undefined : decodePageToken(request.pageToken);
  const keys = await deps.runStore.keys(RUN_RECORDS_PREFIX);
  const records = await Promise.all(keys.map((key) => findRun(deps.runStore, key.slice(RUN_RECORDS_PREFIX.length + 1))));
  const runs = records
    .filter((run): run is runV1.Run => run !== undefined && (request.state === runV1.RunState.UNSPECIFIED || run.state === request.state))
    .sort(newestFirst)
    .filter((run) => cursor === undefined || createdMs(run) < cursor.t || (createdMs(run) === cursor.t && run.runId > cursor.id));
  const page = runs.slice(0, pageSize);
  const last = page[page.length - 1];
  return { runs: page, nextPageToken: runs.length > pageSize && last !== undefined ? encodePageToken({ t: createdMs(last), id: last.runId }) : '' };
}

/**
 * CancelRun: marks the run CANCELLED and emits RunCancelled and RunFinished(CANCELLED). Cancelling
 * a cancelled run returns it unchanged (and re-publishes, in case the first call stopped between
 * the record and the events); a run that ended otherwise is FAILED_PRECONDITION.
 */
export async function cancelRun(deps: RunControlDeps, request: balancerV1.CancelRunRequest): Promise<balancerV1.CancelRunResponse> {
  if (request.reason.length > MAX_CANCEL_REASON) throw new InvalidArgumentError(`reason must be at most ${MAX_CANCEL_REASON} characters, got ${request.reason.length}`, { field: 'reason' });
  const now = deps.now ?? ((): Date => new Date());
  const run = await updateRun(deps.runStore, request.runId, (current) => {
    if (current.state === runV1.RunState.CANCELLED) return current;
    if (isTerminal(current.state)) {
      throw new FailedPreconditionError(`run ${current.runId} has already ended (${runV1.runStateToJSON(current.state)}); only a running run can be cancelled`);
    }
    const at = now();
    return { ...current, state: runV1.RunState.CANCELLED, finishedAt: at, updatedAt: at };
  });
  await deps.publish(run.runId, { $case: 'runCancelled', value: { reason: request.reason } });
  await deps.publish(run.runId, runFinishedPayload(run));
  return { run };
}

/** GetTemperature: the temperature in use, the iteration it was selected for, and the last sweep. */
export async function getTemperature(deps: RunControlDeps, request: balancerV1.GetTemperatureRequest): Promise<balancerV1.GetTemperatureResponse> {
  const run = await getRun(deps.runStore, request.runId);
  const spec = specOf(run);
  const response: balancerV1.GetTemperatureResponse = {
    temperature: run.temperature ?? spec.temperature.staticTemperature,
    // The balancer sets the temperature and moves the run to the iteration it selected it for in one update.
    iteration: run.temperature === undefined ? 0 : run.iteration,
    mode: spec.temperature.mode,
    lastSweep: undefined,
    lastSweepIteration: 0,
  };
  const evaluated = run.summary.map((row) => row.iteration).sort((a, b) => b - a);
  for (const iteration of evaluated) {
    const selection = (await readEvaluation(deps.artifacts, run.runId, iteration))?.selection;
    if (selection?.swept === true && selection.sweep !== undefined) {
      response.lastSweep = selection.sweep;
      response.lastSweepIteration = selection.iteration;
      break;
    }
  }
  return response;
}

export async function listIterationStats(deps: RunControlDeps, request: balancerV1.ListIterationStatsRequest): Promise<balancerV1.ListIterationStatsResponse> {
  return { iterations: (await getRun(deps.runStore, request.runId)).summary };
}
