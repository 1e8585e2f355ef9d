import { parse, serialize } from '@mstar/safetensors';
import type { SafeTensor } from '@mstar/safetensors';
import { OptimizerConfigError, OptimizerStateError } from './errors.js';
import type { ParamLayout } from './params.js';
import { validateSchedule } from './schedule.js';
import type { LrSchedule } from './schedule.js';

/** Chooses, by name and shape, the parameters exempt from weight decay (norms, biases, embeddings...). */
export type NoDecayPredicate = (name: string, shape: readonly number[]) => boolean;

/**
 * A contiguous run of the flat buffer with one weight-decay setting. Adjacent parameters with the
 * same setting merge, so the update is a handful of long loops rather than one per tensor.
 */
export interface DecaySegment {
  readonly start: number;
  readonly end: number;
  readonly decay: boolean;
}

export function decaySegments(layout: ParamLayout, noDecay: ReadonlySet<string>): DecaySegment[] {
  const segments: DecaySegment[] = [];
  for (const entry of layout.entries) {
    const decay = !noDecay.has(entry.name);
    const last = segments[segments.length - 1];
    if (last !== undefined && last.decay === decay) {
      segments[segments.length - 1] = { start: last.start, end: entry.offset + entry.size, decay };
    } else if (entry.size > 0) {
      segments.push({ start: entry.offset, end: entry.offset + entry.size, decay });
    }
  }
  return segments;
}

export function noDecayNames(layout: ParamLayout, predicate: NoDecayPredicate | undefined): Set<string> {
  const names = new Set<string>();
  if (predicate === undefined) return names;
  for (const entry of layout.entries) if (predicate(entry.name, entry.shape)) names.add(entry.name);
  return names;
}

export function checkUnitInterval(name: string, value: number, { open }: { open: boolean }): void {
  if (!Number.isFinite(value) || value < 0 || value > 1 || (open && value === 1)) {
    throw new OptimizerConfigError(`${name} must be in [0, ${open ? '1)' : '1]'}, got ${value}`);
  }
}

export function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new OptimizerConfigError(`${name} must be a finite number >= 0, got ${value}`);
}

const FORMAT = 'mstar.optim/1';

/** Everything an optimizer needs to continue bit for bit: counters, settings and per-parameter buffers. */
export interface OptimizerState<H> {
  kind: string;
  steps: number;
  schedule: LrSchedule;
  hyper: H;
  noDecay: string[];
  /** buffer name (e.g. "m") -> flat buffer over the layout. */
  buffers: Record<string, Float32Array>;
}

/** Writes the state as safetensors: one F32 tensor per (buffer, parameter) named `<buffer>/<param>`, the rest in `__metadata__`. */
export function encodeState<H>(layout: ParamLayout, state: OptimizerState<H>): Uint8Array {
  const tensors: Record<string, SafeTensor> = {};
  for (const [buffer, flat] of Object.entries(state.buffers)) {
    for (const entry of layout.entries) {
      tensors[`${buffer}/${entry.name}`] = { dtype: 'F32', shape: entry.shape, data: flat.subarray(entry.offset, entry.offset + entry.size) };
    }
  }
  return serialize(tensors, {
    format: FORMAT,
    kind: state.kind,
    steps: String(state.steps),
    // JSON writes the shortest decimal that round-trips, so doubles come back bit-identical.
    schedule: JSON.stringify(state.schedule),
    hyper: JSON.stringify(state.hyper),
    no_decay: JSON.stringify(state.noDecay),
  });
}

function jsonField(metadata: Record<string, string>, key: string): unknown {
  const raw = metadata[key];
  if (raw === undefined) throw new OptimizerStateError(`optimizer state lacks __metadata__.${key}`);
  try {
    return JSON.parse(raw);
  } catch (cause) {
    throw new OptimizerStateError(`optimizer state __metadata__.${key} is not JSON: ${raw}`, { cause });
  }
}

/** Reads what `encodeState` wrote, checking it belongs to an optimizer of `kind` over exactly `layout`. */
export function decodeState(bytes: Uint8Array, layout: ParamLayout, kind: string, bufferNames: readonly string[]): OptimizerState<unknown> {
  let parsed;
  try {
    parsed = parse(bytes);
  } catch (cause) {
    throw new OptimizerStateError('optimizer state is not a valid safetensors file', { cause });
  }
  const { tensors, metadata } = parsed;
  if (metadata['format'] !== FORMAT) throw new OptimizerStateError(`optimizer state format is ${JSON.stringify(metadata['format'])}, expected "${FORMAT}"`);
  if (metadata['kind'] !== kind) throw new OptimizerStateError(`optimizer state is for ${JSON.stringify(metadata['kind'])}, not "${kind}"`);
  const steps = Number(metadata['steps']);
  if (!Number.isSafeInteger(steps) || steps < 0) throw new OptimizerStateError(`optimizer state steps ${JSON.stringify(metadata['steps'])} is not an integer >= 0`);
  const noDecay = jsonField(metadata, 'no_decay');
  if (!Array.isArray(noDecay) || !noDecay.every((n) => typeof n === 'string' && layout.has(n))) {
    throw new OptimizerStateError(`optimizer state no_decay ${JSON.stringify(noDecay)} must list parameters of this layout`);
  }

  const buffers: Record<string, Float32Array> = {};
  const expected = new Set<string>();
  for (const buffer of bufferNames) {
    const flat = new Float32Array(layout.size);
    for (const entry of layout.entries) {
      const name = `${buffer}/${entry.name}`;
      expected.add(name);
      const tensor = tensors[name];
      if (tensor === undefined) throw new OptimizerStateError(`optimizer state has no tensor "${name}" for parameter "${entry.name}"`);
      if (tensor.dtype !== 'F32' || tensor.shape.length !== entry.shape.length || tensor.shape.some((d, i) => d !== entry.shape[i])) {
        throw new OptimizerStateError(
          `optimizer state tensor "${name}" is ${tensor.dtype} [${tensor.shape.join(', ')}] but parameter "${entry.name}" is F32 [${entry.shape.join(', ')}]`,
        );
      }
      flat.set(tensor.data, entry.offset);
    }
    buffers[buffer] = flat;
  }
  const extra = Object.keys(tensors).filter((n) => !expected.has(n));
  if (extra.length > 0) throw new OptimizerStateError(`optimizer state has tensors for parameters not in this layout: ${extra.slice(0, 8).join(', ')}`);

  const schedule = jsonField(metadata, 'schedule') as LrSchedule;
  try {
    validateSchedule(schedule);
  } catch (cause) {
    throw new OptimizerStateError('optimizer state holds an invalid schedule', { cause });
  }
  return { kind, steps, schedule, hyper: jsonField(metadata, 'hyper'), noDecay: noDecay as string[], buffers };
}
