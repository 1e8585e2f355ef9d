import * as ort from 'onnxruntime-node';
import { buildTrainingGraph, GraphBuilder, seededRandom, toModel, type DType, type Value } from '../src/index.js';

export const rng = seededRandom;

export function randn(rand: () => number, n: number): number[] {
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Value range of the point where the gradient is checked (default: standard normal). */
  domain?: 'normal' | 'positive' | 'awayFromZero';
}

export interface FeedSpec {
  name: string;
  dtype: DType;
  shape: number[];
  data: ort.Tensor['data'];
}

export interface GradCheck {
  /** Op types of the forward graph (before the backward pass was appended). */
  opTypes?: Set<string>;
  /** Directional derivative from the backward graph: sum_p <grad_p, v_p>. */
  analytic: number;
  /** Central difference (L(x + eps v) - L(x - eps v)) / 2 eps. */
  numeric: number;
  relError: number;
}

function pointFor(rand: () => number, spec: ParamSpec): number[] {
  const n = sizeOf(spec.shape);
  switch (spec.domain ?? 'normal') {
    case 'positive':
      return Array.from({ length: n }, () => 0.5 + 1.5 * rand());
    case 'awayFromZero':
      return Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (0.5 + rand()));
    case 'normal':
      return randn(rand, n);
  }
}

/**
 * Directional-derivative check of a training graph (outputs `loss` and `grad.<param>`, params as
 * inputs): compares sum_p <grad_p, v_p> with a central difference of the loss along v.
 */
export async function checkTrainingGraph(
  g: GraphBuilder,
  gradOutputs: ReadonlyMap<string, string>,
  point: ReadonlyMap<string, Float64Array | Float32Array>,
  feedTensors: Record<string, ort.Tensor>,
  options: { eps: number; seed: number; perturb?: readonly string[] },
): Promise<GradCheck> {
  const rand = rng(options.seed);
  const session = await ort.InferenceSession.create(toModel(g, { params: 'inputs' }));
  const names = options.perturb ?? [...gradOutputs.keys()];
  const directions = new Map(names.map((n) => [n, randn(rand, (point.get(n) as Float64Array).length)]));
  const feeds = (offset: number): Record<string, ort.Tensor> => {
    const out: Record<string, ort.Tensor> = { ...feedTensors };
    for (const n of gradOutputs.keys()) {
      const x = point.get(n) as Float64Array | Float32Array;
      const v = directions.get(n) ?? [];
      const moved = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
      x.forEach((xv, j) => (moved[j] = xv + offset * (v[j] ?? 0)));
      out[n] = new ort.Tensor(moved, [...(g.params.get(n)?.shape ?? [])]);
    }
    return out;
  };
  const result = await session.run(feeds(0));
  let analytic = 0;
  for (const n of names) {
    const grad = result[gradOutputs.get(n) as string]?.data as Float64Array | Float32Array;
    const v = directions.get(n) as number[];
    // Random magnitudes, signs aligned with the gradient: the directional derivative cannot cancel
    // to ~0, where round-off would swamp the relative error.
    grad.forEach((gv, j) => {
      v[j] = Math.abs(v[j] as number) * (gv < 0 ? -1 : 1);
      analytic += gv * (v[j]);
    });
  }
  const lossAt = async (offset: number): Promise<number> => Number((await session.run(feeds(offset), ['loss'])).loss?.data[0]);
  const numeric = ((await lossAt(options.eps)) - (await lossAt(-options.eps))) / (2 * options.eps);
  await session.release();
  const relError = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 1e-12);
  return { analytic, numeric, relError };
}

/**
 * Directional-derivative check of one op's VJP. Params live in float64; with `compute: 'float32'`
 * they are cast to float32 before `build` and the result cast back, for ops ORT has no double kernel
 * for. A non-scalar result is reduced with a fixed random weighting.
 */
export async function checkGradient(options: {
  params: ParamSpec[];
  feeds?: FeedSpec[];
  build: (g: GraphBuilder, params: Value[], feeds: Value[]) => Value;
  compute?: 'float64' | 'float32';
  eps?: number;
  seed?: number;
}): Promise<GradCheck> {
  const seed = options.seed ?? 7;
  const rand = rng(seed);
  const g = new GraphBuilder('gradcheck');
  const params = options.params.map((p) => g.param(p.name, p.shape, { dtype: 'float64' }));
  const feedValues = (options.feeds ?? []).map((f) => g.input(f.name, f.dtype, f.shape));
  const compute = options.compute ?? 'float64';
  const inner = compute === 'float64' ? params : params.map((p) => g.cast(p, 'float32'));
  let y = options.build(g, inner, feedValues);
  if (y.dtype !== 'float64') y = g.cast(y, 'float64');
  const shape = y.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`gradient checks need concrete shapes, got ${y.toString()}`);
    return d;
  });
  const weighted = sizeOf(shape) === 1 ? y : g.mul(y, g.constant(new Float64Array(randn(rand, sizeOf(shape))), shape, 'float64'));
  const loss = g.sumAll(weighted);
  const opTypes = new Set(g.nodes.map((n) => n.opType));
  const { gradOutputs } = buildTrainingGraph(g, { loss });
  const point = new Map(options.params.map((p) => [p.name, Float64Array.from(pointFor(rand, p))]));
  const feeds: Record<string, ort.Tensor> = {};
  for (const f of options.feeds ?? []) feeds[f.name] = new ort.Tensor(f.dtype, f.data, f.shape);
  const result = await checkTrainingGraph(g, gradOutputs, point, feeds, { eps: options.eps ?? (compute === 'float64' ? 1e-5 : 1e-2), seed });
  return { ...result, opTypes };
}
