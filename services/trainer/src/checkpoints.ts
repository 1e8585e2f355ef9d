import { commonV1 } from '@mstar/contracts';
import { FailedPreconditionError, InvalidArgumentError } from '@mstar/errors';
import { saveCheckpoint, storeCheckpointIO, type Checkpoint } from '@mstar/models';
import { runArtifacts } from '@mstar/runspec';
import type { ArtifactStore } from '@mstar/stores';

/** The trainer's own description of a checkpoint, stored as `checkpoint.json` beside its weights. */
export const CHECKPOINT_META_FILE = 'checkpoint.json';

export type ModelKindName = 'policy' | 'prm';
export type TrainerStage = 'warmup' | 'prm' | 'iteration';

/** Names a checkpoint inside one run. */
export interface CheckpointTarget {
  readonly kind: ModelKindName;
  readonly version: number;
}

/** What `checkpoint.json` holds: the proto's Checkpoint fields, plus how the stage that made it went. */
export interface CheckpointMeta extends CheckpointTarget {
  readonly iteration: number;
  readonly trainingExamples: number;
  /** The checkpoint training started from; undefined for checkpoints trained from initial weights. */
  readonly parent: CheckpointTarget | undefined;
  /** The optimizer's step count at the end (continuing across iterations under CONTINUOUS). */
  readonly optimizerStep: number;
  readonly createdAt: Date;
  readonly stage: TrainerStage;
  /** Optimizer steps taken by the stage itself. */
  readonly steps: number;
  readonly examplesSeen: number;
  /** Loss and learning rate of the stage's last step (0 when it took none). */
  readonly loss: number;
  readonly learningRate: number;
  readonly seconds: number;
}

const KIND_OF: Record<ModelKindName, commonV1.CheckpointKind> = { policy: commonV1.CheckpointKind.POLICY, prm: commonV1.CheckpointKind.PRM };
const STAGE_OF: Record<TrainerStage, commonV1.Stage> = { warmup: commonV1.Stage.WARMUP, prm: commonV1.Stage.PRM, iteration: commonV1.Stage.ITERATION };

export function protoKind(kind: ModelKindName): commonV1.CheckpointKind {
  return KIND_OF[kind];
}

export function protoStage(stage: TrainerStage): commonV1.Stage {
  return STAGE_OF[stage];
}

/** The kind name of a proto kind; undefined for UNSPECIFIED and unknown values. */
export function kindName(kind: commonV1.CheckpointKind): ModelKindName | undefined {
  if (kind === commonV1.CheckpointKind.POLICY) return 'policy';
  if (kind === commonV1.CheckpointKind.PRM) return 'prm';
  return undefined;
}

/** The artifact prefix of a checkpoint (`runs/<run>/checkpoints/<kind>/v<version>`). */
export function checkpointPrefix(runId: string, target: CheckpointTarget): string {
  const keys = runArtifacts(runId);
  return target.kind === 'policy' ? keys.policyCheckpoint(target.version) : keys.prmCheckpoint(target.version);
}

function completeKey(runId: string, target: CheckpointTarget): string {
  return runArtifacts(runId).complete(checkpointPrefix(runId, target));
}

export function isComplete(store: ArtifactStore, runId: string, target: CheckpointTarget): Promise<boolean> {
  return store.exists(completeKey(runId, target));
}

/** Removes whatever an interrupted attempt left under the checkpoint's prefix; returns how many objects went. */
export async function clearPartial(store: ArtifactStore, runId: string, target: CheckpointTarget): Promise<number> {
  const keys = await store.list(`${checkpointPrefix(runId, target)}/`);
  for (const key of keys) await store.delete(key);
  return keys.length;
}

const finite = (x: number): number => (Number.isFinite(x) ? x : 0);

/**
 * Writes a checkpoint: the model files (`saveCheckpoint`: weights, optimizer state, config,
 * tokenizer, ONNX graphs), then `checkpoint.json`, then the COMPLETE marker, so a checkpoint with
 * a marker is whole.
 */
export async function writeCheckpoint(store: ArtifactStore, runId: string, ckpt: Checkpoint, meta: CheckpointMeta): Promise<void> {
  const prefix = checkpointPrefix(runId, meta);
  await saveCheckpoint(storeCheckpointIO(store, prefix), ckpt);
  await store.putJson(`${prefix}/${CHECKPOINT_META_FILE}`, {
    kind: meta.kind,
    version: meta.version,
    iteration: meta.iteration,
    training_examples: meta.trainingExamples,
    parent: meta.parent ?? null,
    optimizer_step: meta.optimizerStep,
    created_at: meta.createdAt.toISOString(),
    stage: meta.stage,
    steps: meta.steps,
    examples_seen: meta.examplesSeen,
    loss: finite(meta.loss),
    learning_rate: finite(meta.learningRate),
    seconds: meta.seconds,
  });
  await store.put(completeKey(runId, meta), new TextEncoder().encode(`${meta.createdAt.toISOString()}\n`));
}

function field<T>(value: unknown, check: (v: unknown) => v is T, name: string, key: string): T {
  if (!check(value)) throw new FailedPreconditionError(`${key}: ${name} is missing or malformed`);
  return value;
}
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isKind = (v: unknown): v is ModelKindName => v === 'policy' || v === 'prm';
const isStage = (v: unknown): v is TrainerStage => v === 'warmup' || v === 'prm' || v === 'iteration';
const isDate = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** Reads a complete checkpoint's `checkpoint.json` (FailedPreconditionError when it is malformed). */
export async function readMeta(store: ArtifactStore, runId: string, target: CheckpointTarget): Promise<CheckpointMeta> {
  const key = `${checkpointPrefix(runId, target)}/${CHECKPOINT_META_FILE}`;
  let o: Record<string, unknown>;
  try {
    o = await store.getJson<Record<string, unknown>>(key);
  } catch (cause) {
    // A stored file the trainer wrote itself is broken: a server-side fault, not the caller's argument.
    if (cause instanceof InvalidArgumentError) throw new FailedPreconditionError(`${key} is not valid JSON`, { cause });
    throw cause;
  }
  if (typeof o !== 'object' || o === null) throw new FailedPreconditionError(`${key} must hold a JSON object`);
  const parent = o['parent'] as Record<string, unknown> | null | undefined;
  return {
    kind: field(o['kind'], isKind, 'kind', key),
    version: field(o['version'], isCount, 'version', key),
    iteration: field(o['iteration'], isCount, 'iteration', key),
    trainingExamples: field(o['training_examples'], isCount, 'training_examples', key),
    parent: parent === null || parent === undefined ? undefined : { kind: field(parent['kind'], isKind, 'parent.kind', key), version: field(parent['version'], isCount, 'parent.version', key) },
    optimizerStep: field(o['optimizer_step'], isCount, 'optimizer_step', key),
    createdAt: new Date(field(o['created_at'], isDate, 'created_at', key)),
    stage: field(o['stage'], isStage, 'stage', key),
    steps: field(o['steps'], isCount, 'steps', key),
    examplesSeen: field(o['examples_seen'], isCount, 'examples_seen', key),
    loss: field(o['loss'], isNumber, 'loss', key),
    learningRate: field(o['learning_rate'], isNumber, 'learning_rate', key),
    seconds: field(o['seconds'], isNumber, 'seconds', key),
  };
}

/** The contract's Checkpoint message of a stored checkpoint. */
export function toProto(runId: string, meta: CheckpointMeta): commonV1.Checkpoint {
  return {
    ref: { runId, kind: protoKind(meta.kind), version: meta.version },
    iteration: meta.iteration,
    artifactPrefix: checkpointPrefix(runId, meta),
    createdAt: meta.createdAt,
    trainingExamples: meta.trainingExamples,
    parent: meta.parent === undefined ? undefined : { runId, kind: protoKind(meta.parent.kind), version: meta.parent.version },
    optimizerStep: meta.optimizerStep,
  };
}

const COMPLETE_KEY = /^runs\/[^/]+\/checkpoints\/(policy|prm)\/v(\d+)\/COMPLETE$/;

/** Every complete checkpoint of a run, policy before PRM, then by version. */
export async function listComplete(store: ArtifactStore, runId: string): Promise<CheckpointMeta[]> {
  const targets: CheckpointTarget[] = [];
  for (const key of await store.list(`${runArtifacts(runId).root}/checkpoints/`)) {
    const match = COMPLETE_KEY.exec(key);
    if (match !== null) targets.push({ kind: match[1] as ModelKindName, version: Number(match[2]) });
  }
  targets.sort((a, b) => protoKind(a.kind) - protoKind(b.kind) || a.version - b.version);
  return Promise.all(targets.map((t) => readMeta(store, runId, t)));
}
