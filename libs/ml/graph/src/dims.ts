import { GraphBuildError } from './errors.js';

/** One tensor dimension: a concrete size, or a symbol such as 'batch' (products are written 'batch*seq'). */
export type Dim = number | string;
export type Shape = readonly Dim[];

interface DimTerm {
  coef: number;
  syms: string[];
}

function parseDim(d: Dim): DimTerm {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    const n = Number(part);
    if (part !== '' && Number.isInteger(n)) coef *= n;
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function formatDim(t: DimTerm): Dim {
  if (t.syms.length === 0 || t.coef === 0) return t.coef;
  return t.coef === 1 ? t.syms.join('*') : `${t.syms.join('*')}*${t.coef}`;
}

/** Canonical form, so that 'seq*batch' and 'batch*seq' compare equal. */
export function canonicalDim(d: Dim): Dim {
  return formatDim(parseDim(d));
}

export function dimEq(a: Dim, b: Dim): boolean {
  return canonicalDim(a) === canonicalDim(b);
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i] as Dim));
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function mulDims(dims: Shape): Dim {
  const out: DimTerm = { coef: 1, syms: [] };
  for (const d of dims) {
    const t = parseDim(d);
    out.coef *= t.coef;
    out.syms.push(...t.syms);
  }
  out.syms.sort();
  return formatDim(out);
}

/** a / b when it divides exactly (symbols cancel), otherwise undefined. */
export function divDim(a: Dim, b: Dim): Dim | undefined {
  const ta = parseDim(a);
  const tb = parseDim(b);
  if (tb.coef === 0 || ta.coef % tb.coef !== 0) return undefined;
  const syms = [...ta.syms];
  for (const s of tb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return formatDim({ coef: ta.coef / tb.coef, syms });
}

export function formatShape(shape: Shape): string {
  return `[${shape.map((d) => (typeof d === 'number' ? String(d) : `'${d}'`)).join(', ')}]`;
}

/** Numpy-style multidirectional broadcasting; different symbols are refused rather than assumed equal. */
export function broadcastShapes(shapes: readonly Shape[], what: string): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined || dimEq(d, 1)) continue;
      if (dimEq(dim, 1)) dim = canonicalDim(d);
      else if (!dimEq(dim, d)) {
        throw new GraphBuildError(
          `${what}: shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (axis ${i - rank}: ${String(dim)} vs ${String(d)})`,
        );
      }
    }
    out.push(dim);
  }
  return out;
}

export function normalizeAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new GraphBuildError(`${what}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}
