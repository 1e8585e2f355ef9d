import { decaySegments, decodeState, encodeState, checkNonNegative, checkUnitInterval, noDecayNames } from './optimizer.js';
import type { DecaySegment, NoDecayPredicate } from './optimizer.js';
import type { ParamLayout } from './params.js';
import { learningRate, validateSchedule } from './schedule.js';
import type { LrSchedule } from './schedule.js';
import { OptimizerStateError } from './errors.js';

export interface SgdHyper {
  momentum: number;
  /** Classic L2 decay, added to the gradient (coupled), unlike AdamW's. */
  weightDecay: number;
}

export interface SgdOptions extends Partial<SgdHyper> {
  schedule: LrSchedule;
  noDecay?: NoDecayPredicate;
}

const KIND = 'sgd';
const BUFFERS = ['momentum'] as const;

/** SGD with heavy-ball momentum as PyTorch defines it: `b = mu*b + (g + wd*p)`, `p -= lr*b`. */
export class Sgd {
  readonly layout: ParamLayout;
  readonly hyper: Readonly<SgdHyper>;
  readonly schedule: LrSchedule;
  readonly momentumBuffer: Float32Array;
  readonly noDecay: ReadonlySet<string>;
  #steps = 0;
  readonly #segments: readonly DecaySegment[];

  constructor(layout: ParamLayout, options: SgdOptions) {
    this.layout = layout;
    this.hyper = checkHyper({ momentum: options.momentum ?? 0.9, weightDecay: options.weightDecay ?? 0 });
    this.schedule = validateSchedule(options.schedule);
    this.noDecay = noDecayNames(layout, options.noDecay);
    this.momentumBuffer = new Float32Array(layout.size);
    this.#segments = decaySegments(layout, this.noDecay);
  }

  get steps(): number {
    return this.#steps;
  }

  step(params: Float32Array, grads: Float32Array): number {
    this.layout.check(params, 'params');
    this.layout.check(grads, 'grads');
    const lr = learningRate(this.schedule, this.#steps);
    const { momentum, weightDecay } = this.hyper;
    const buf = this.momentumBuffer;
    for (const segment of this.#segments) {
      const wd = segment.decay ? weightDecay : 0;
      for (let i = segment.start, end = segment.end; i < end; i++) {
        const p = params[i]!;
        const b = Math.fround(momentum * buf[i]! + grads[i]! + wd * p);
        buf[i] = b;
        params[i] = p - lr * b;
      }
    }
    this.#steps++;
    return lr;
  }

  saveState(): Uint8Array {
    return encodeState(this.layout, {
      kind: KIND,
      steps: this.#steps,
      schedule: this.schedule,
      hyper: this.hyper,
      noDecay: [...this.noDecay],
      buffers: { momentum: this.momentumBuffer },
    });
  }

  static loadState(bytes: Uint8Array, layout: ParamLayout): Sgd {
    const state = decodeState(bytes, layout, KIND, BUFFERS);
    let hyper: SgdHyper;
    try {
      hyper = checkHyper(state.hyper as SgdHyper);
    } catch (cause) {
      throw new OptimizerStateError('optimizer state holds invalid SGD hyper-parameters', { cause });
    }
    const noDecay = new Set(state.noDecay);
    const optimizer = new Sgd(layout, { ...hyper, schedule: state.schedule, noDecay: (name) => noDecay.has(name) });
    optimizer.momentumBuffer.set(state.buffers['momentum']!);
    optimizer.#steps = state.steps;
    return optimizer;
  }
}

function checkHyper(hyper: SgdHyper): SgdHyper {
  checkUnitInterval('momentum', hyper.momentum, { open: true });
  checkNonNegative('weightDecay', hyper.weightDecay);
  return { momentum: hyper.momentum, weightDecay: hyper.weightDecay };
}
