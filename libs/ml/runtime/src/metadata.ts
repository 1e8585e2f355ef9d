import { InputValidationError, UnknownOutputError } from './errors.js';
import { checkTensor } from './tensor.js';
import type { Feeds } from './tensor.js';

/**
 * One model input or output. `type` is ONNX Runtime's element type name ('float32', 'float16', ...)
 * or 'non-tensor'; a string in `dims` is a symbolic dimension (any size). ONNX Runtime reports an
 * unknown rank as `[]`, the same as a scalar, so `[]` is not rank-checked.
 */
export interface ValueInfo {
  readonly name: string;
  readonly type: string;
  readonly dims: readonly (number | string)[];
}

export interface ModelInfo {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

function describeDims(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}

/**
 * Everything checkable before ONNX Runtime sees the request: every input fed once and nothing else,
 * element type, rank, fixed dimensions, data length; and that requested outputs exist.
 */
export function validateRequest(info: ModelInfo, feeds: Feeds, outputNames?: readonly string[]): void {
  const expected = new Map(info.inputs.map((i) => [i.name, i]));
  for (const name of Object.keys(feeds)) {
    if (!expected.has(name)) {
      throw new InputValidationError(name, `one of the model inputs (${[...expected.keys()].join(', ')})`, 'an unknown input name');
    }
  }
  for (const input of info.inputs) {
    const feed = feeds[input.name];
    if (feed === undefined) throw new InputValidationError(input.name, `a ${input.type} ${describeDims(input.dims)} tensor`, 'no feed (missing input)');
    checkTensor(input.name, feed);
    if (feed.type !== input.type) throw new InputValidationError(input.name, `type ${input.type}`, `type ${feed.type}`);
    if (input.dims.length === 0) continue;
    if (feed.dims.length !== input.dims.length) {
      throw new InputValidationError(input.name, `rank ${input.dims.length} ${describeDims(input.dims)}`, `rank ${feed.dims.length} [${feed.dims.join(', ')}]`);
    }
    input.dims.forEach((dim, axis) => {
      if (typeof dim === 'number' && feed.dims[axis] !== dim) {
        throw new InputValidationError(input.name, `dims ${describeDims(input.dims)} (axis ${axis} = ${dim})`, `[${feed.dims.join(', ')}]`);
      }
    });
  }
  if (outputNames !== undefined) {
    const available = info.outputs.map((o) => o.name);
    for (const name of outputNames) if (!available.includes(name)) throw new UnknownOutputError(name, available);
  }
}
