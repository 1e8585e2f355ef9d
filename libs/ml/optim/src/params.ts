import { LayoutError } from './errors.js';

export interface ParamEntry {
  readonly name: string;
  /** Element offset of this parameter in the flat buffer. */
  readonly offset: number;
  readonly size: number;
  readonly shape: readonly number[];
}

/** A named, ordered partition of one flat float32 buffer. Parameters, gradients and optimizer moments share it. */
export class ParamLayout {
  readonly entries: readonly ParamEntry[];
  /** Total number of elements. */
  readonly size: number;
  readonly #byName: ReadonlyMap<string, ParamEntry>;

  constructor(shapes: Iterable<readonly [string, readonly number[]]>) {
    const entries: ParamEntry[] = [];
    const byName = new Map<string, ParamEntry>();
    let offset = 0;
    for (const [name, shape] of shapes) {
      if (byName.has(name)) throw new LayoutError(`parameter "${name}" appears twice in the layout`);
      let size = 1;
      for (const dim of shape) {
        if (!Number.isSafeInteger(dim) || dim < 0) throw new LayoutError(`parameter "${name}" has an invalid shape [${shape.join(', ')}]`);
        size *= dim;
      }
      const entry: ParamEntry = { name, offset, size, shape: [...shape] };
      entries.push(entry);
      byName.set(name, entry);
      offset += size;
    }
    this.entries = entries;
    this.size = offset;
    this.#byName = byName;
  }

  get(name: string): ParamEntry {
    const entry = this.#byName.get(name);
    if (entry === undefined) throw new LayoutError(`no parameter "${name}" in the layout (it has ${this.entries.length}: ${this.entries.slice(0, 8).map((e) => e.name).join(', ')}${this.entries.length > 8 ? ', ...' : ''})`);
    return entry;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Throws unless `buffer` has exactly this layout's size; `what` names the buffer in the message. */
  check(buffer: Float32Array, what: string): void {
    if (buffer.length !== this.size) throw new LayoutError(`${what} has ${buffer.length} elements but the parameter layout has ${this.size}`);
  }
}

/** A tensor as `@mstar/safetensors` writes it. */
export interface F32Tensor {
  dtype: 'F32';
  shape: readonly number[];
  data: Float32Array;
}

/**
 * All parameters of a model in ONE Float32Array so optimizer updates are single fused loops over
 * flat buffers; `view(name)` gives each tensor as a subarray of that buffer.
 */
export class ParamStore {
  readonly layout: ParamLayout;
  readonly data: Float32Array;

  constructor(layout: ParamLayout, data: Float32Array = new Float32Array(layout.size)) {
    layout.check(data, 'parameter buffer');
    this.layout = layout;
    this.data = data;
  }

  /**
   * Copies the tensors into a fresh flat buffer. The layout follows the record's key order unless
   * `layout` is given; pass it when the tensors come from a file (safetensors orders tensors by
   * name, which is rarely the model's order) so the flat buffer matches the model's layout.
   */
  static fromTensors(tensors: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: ArrayBufferView }>>, layout?: ParamLayout): ParamStore {
    const target = layout ?? new ParamLayout(Object.entries(tensors).map(([name, t]) => [name, t.shape] as const));
    const extra = Object.keys(tensors).filter((name) => !target.has(name));
    if (extra.length > 0) throw new LayoutError(`tensors not in the parameter layout: ${extra.slice(0, 8).join(', ')}`);
    const store = new ParamStore(target);
    for (const entry of target.entries) {
      const tensor = tensors[entry.name];
      if (tensor === undefined) throw new LayoutError(`parameter "${entry.name}" is missing`);
      if (!(tensor.data instanceof Float32Array)) {
        throw new LayoutError(`parameter "${entry.name}" must be float32 data, got ${Object.prototype.toString.call(tensor.data)} (widen it first, e.g. with toFloat32 from @mstar/safetensors)`);
      }
      if (tensor.shape.length !== entry.shape.length || tensor.shape.some((d, i) => d !== entry.shape[i])) {
        throw new LayoutError(`parameter "${entry.name}" has shape [${tensor.shape.join(', ')}] but the layout says [${entry.shape.join(', ')}]`);
      }
      if (tensor.data.length !== entry.size) {
        throw new LayoutError(`parameter "${entry.name}" has shape [${entry.shape.join(', ')}] (${entry.size} elements) but ${tensor.data.length} values`);
      }
      store.data.set(tensor.data, entry.offset);
    }
    return store;
  }

  /** The parameter as a live view into the flat buffer (writes go through). */
  view(name: string): Float32Array {
    const { offset, size } = this.layout.get(name);
    return this.data.subarray(offset, offset + size);
  }

  /** Every parameter as a view, in layout order, ready for `@mstar/safetensors` `serialize`. */
  toTensors(): Record<string, F32Tensor> {
    const out: Record<string, F32Tensor> = {};
    for (const entry of this.layout.entries) {
      out[entry.name] = { dtype: 'F32', shape: entry.shape, data: this.data.subarray(entry.offset, entry.offset + entry.size) };
    }
    return out;
  }
}
