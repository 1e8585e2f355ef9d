import { NotFoundError, UnavailableError } from '@mstar/errors';
import type { Logger } from '@mstar/telemetry';

/** Which checkpoint: the run that trained it and its version. */
export interface ModelRef {
  readonly runId: string;
  readonly version: number;
}

/** Anything the registry can hold: a loaded model that knows its checkpoint. */
export interface Versioned {
  readonly ref: ModelRef;
}

/** Turns an artifact-store prefix into a loaded model; `unload` frees what it holds. */
export interface ModelLoader<M extends Versioned> {
  load(ref: ModelRef, prefix: string): Promise<{ model: M; unload(): Promise<void> }>;
}

/** A model held for one request: it stays loaded until `release` (idempotent). */
export interface ModelLease<M> {
  readonly model: M;
  release(): void;
}

export interface ModelRegistry<M extends Versioned> {
  /** Loads a version (a no-op when it is loaded or loading) and makes it current if it is the newest. */
  load(ref: ModelRef, prefix: string): Promise<M>;
  /** The pinned version, or the current one; NotFoundError / UnavailableError otherwise. */
  acquire(version?: number): ModelLease<M>;
  /** The newest acquirable version; undefined until the first load. */
  current(): M | undefined;
  /** Acquirable versions, newest first. */
  versions(): number[];
  /** Unloads every version once its leases are released. */
  close(): Promise<void>;
}

export interface ModelRegistryOptions<M extends Versioned> {
  readonly loader: ModelLoader<M>;
  /** How many of the newest versions stay acquirable. */
  readonly retain: number;
  readonly logger: Logger;
  /** Names the model in messages and logs ("PRM version 3 is not loaded"). */
  readonly label: string;
  /** Called after every load that changed the acquirable set. */
  readonly onChange?: () => void;
}

interface Slot<M> {
  readonly model: M;
  readonly unload: () => Promise<void>;
  leases: number;
  /** Out of the retained set: no new leases; unloaded when the last one is released. */
  retired: boolean;
}

/**
 * The loaded versions of one run's model in a serving replica (policy-inference's policy,
 * prm-scoring's PRM): the newest `retain` versions take requests; an older one is retired and
 * unloaded once the requests holding it finish, so a hot reload never pulls weights from under an
 * in-flight request.
 */
export function createModelRegistry<M extends Versioned>(options: ModelRegistryOptions<M>): ModelRegistry<M> {
  const { label, logger } = options;
  const slots = new Map<number, Slot<M>>();
  const pending = new Map<number, Promise<M>>();
  const unloading = new Set<Promise<void>>();

  const active = (): Slot<M>[] => [...slots.values()].filter((s) => !s.retired).sort((a, b) => b.model.ref.version - a.model.ref.version);

  const reap = (slot: Slot<M>): void => {
    if (!slot.retired || slot.leases > 0) return;
    const { version } = slot.model.ref;
    slots.delete(version);
    const done: Promise<void> = slot
      .unload()
      .then(() => logger.info({ version }, `${label} version unloaded`))
      .catch((err: unknown) => logger.error({ err, version }, `${label} version unload failed`))
      .finally(() => unloading.delete(done));
    unloading.add(done);
  };

  const loadNew = async (ref: ModelRef, prefix: string): Promise<M> => {
    const started = performance.now();
    const loaded = await options.loader.load(ref, prefix);
    const { model } = loaded;
    slots.set(ref.version, { model, unload: () => loaded.unload(), leases: 0, retired: false });
    for (const old of active().slice(options.retain)) {
      old.retired = true;
      reap(old);
    }
    logger.info({ runId: ref.runId, version: ref.version, prefix, ms: Math.round(performance.now() - started) }, `${label} version loaded`);
    options.onChange?.();
    return model;
  };

  return {
    load(ref, prefix) {
      const loaded = slots.get(ref.version);
      if (loaded !== undefined && !loaded.retired) return Promise.resolve(loaded.model);
      let loading = pending.get(ref.version);
      if (loading === undefined) {
        loading = loadNew(ref, prefix).finally(() => pending.delete(ref.version));
        pending.set(ref.version, loading);
      }
      return loading;
    },
    acquire(version) {
      const live = active();
      const newest = live[0];
      if (newest === undefined) throw new UnavailableError(`no ${label} is loaded yet`);
      const slot = version === undefined ? newest : slots.get(version);
      if (slot === undefined || slot.retired) {
        throw new NotFoundError(`${label} version ${version} is not loaded; loaded versions: ${live.map((s) => s.model.ref.version).join(', ')}`);
      }
      slot.leases++;
      let held = true;
      return {
        model: slot.model,
        release() {
          if (!held) return;
          held = false;
          slot.leases--;
          reap(slot);
        },
      };
    },
    current: () => active()[0]?.model,
    versions: () => active().map((s) => s.model.ref.version),
    async close() {
      await Promise.allSettled(pending.values());
      for (const slot of slots.values()) {
        slot.retired = true;
        reap(slot);
      }
      await Promise.all(unloading);
    },
  };
}
