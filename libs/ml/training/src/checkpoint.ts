import { AdamW, ParamStore } from '@mstar/optim';
import type { ParamLayout } from '@mstar/optim';
import { parse, serialize } from '@mstar/safetensors';
import type { SafeTensor } from '@mstar/safetensors';
import { TrainerStateError } from './errors.js';

const FORMAT = 'mstar.training/1';
const PARAM_PREFIX = 'param/';

export interface TrainerCheckpoint {
  params: ParamStore;
  optimizer: AdamW;
  /** Global-norm clipping threshold in force when saved (undefined: no clipping). */
  clipNorm: number | undefined;
}

/**
 * One safetensors file with everything training needs to continue bit for bit: `param/<name>`
 * tensors, the optimizer's `m/<name>` and `v/<name>` and its metadata (steps, schedule,
 * hyper-parameters, no-decay names), and the trainer's clipping threshold.
 */
export function encodeCheckpoint(params: ParamStore, optimizer: AdamW, clipNorm: number | undefined): Uint8Array {
  const state = parse(optimizer.saveState());
  const tensors: Record<string, SafeTensor> = { ...state.tensors };
  for (const [name, tensor] of Object.entries(params.toTensors())) tensors[PARAM_PREFIX + name] = tensor;
  return serialize(tensors, { ...state.metadata, 'trainer.format': FORMAT, 'trainer.clip_norm': JSON.stringify(clipNorm ?? null) });
}

/** Reads what `encodeCheckpoint` wrote, checking every tensor against `layout`. */
export function decodeCheckpoint(bytes: Uint8Array, layout: ParamLayout): TrainerCheckpoint {
  let parsed;
  try {
    parsed = parse(bytes);
  } catch (cause) {
    throw new TrainerStateError('trainer checkpoint is not a valid safetensors file', { cause });
  }
  const { tensors, metadata } = parsed;
  if (metadata['trainer.format'] !== FORMAT) {
    throw new TrainerStateError(`trainer checkpoint format is ${JSON.stringify(metadata['trainer.format'])}, expected "${FORMAT}"`);
  }
  let clip: unknown;
  try {
    clip = JSON.parse(metadata['trainer.clip_norm'] ?? 'null');
  } catch (cause) {
    throw new TrainerStateError(`trainer checkpoint clip norm ${JSON.stringify(metadata['trainer.clip_norm'])} is not JSON`, { cause });
  }
  if (clip !== null && (typeof clip !== 'number' || !(clip > 0))) throw new TrainerStateError(`trainer checkpoint clip norm ${JSON.stringify(clip)} is not a number > 0 or null`);

  const paramTensors: Record<string, SafeTensor> = {};
  const optimizerTensors: Record<string, SafeTensor> = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name.startsWith(PARAM_PREFIX)) paramTensors[name.slice(PARAM_PREFIX.length)] = tensor;
    else optimizerTensors[name] = tensor;
  }
  try {
    return {
      params: ParamStore.fromTensors(paramTensors, layout),
      optimizer: AdamW.loadState(serialize(optimizerTensors, metadata), layout),
      clipNorm: clip === null ? undefined : clip,
    };
  } catch (cause) {
    throw new TrainerStateError(`trainer checkpoint does not fit this model's parameters: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
