// The AdamW update as a hand-assembled WebAssembly SIMD function. A scalar JavaScript loop cannot
// vectorise the per-element sqrt and division and measured 7-12 ns/param here; f32x4 lanes do four
// elements per instruction. The module is a few hundred bytes, built below so no toolchain is needed.

/** Unsigned LEB128. */
function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

// Opcodes (core and SIMD, the latter after the 0xfd prefix).
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32And: [0x71],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  f32Sqrt: [0x91],
  f32Add: [0x92],
  f32Sub: [0x93],
  f32Mul: [0x94],
  f32Div: [0x95],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};
const v128Load = op.simd(0x00, 4, 0);
const v128Store = op.simd(0x0b, 4, 0);
const f32x4Splat = op.simd(0x13);
const f32x4Sqrt = op.simd(0xe3);
const f32x4Add = op.simd(0xe4);
const f32x4Sub = op.simd(0xe5);
const f32x4Mul = op.simd(0xe6);
const f32x4Div = op.simd(0xe7);

// Parameters: byte pointers p, g, m, v; element count n; then the f32 scalars.
const P = 0, G = 1, M = 2, V = 3, N = 4;
const SCALARS = ['beta1', 'beta2', 'oneMinusBeta1', 'oneMinusBeta2', 'bc1', 'bc2', 'lr', 'eps', 'keep'] as const;
const S0 = 5;
// Locals after the 14 parameters.
const OFF = 14, END4 = 15, END = 16;
const SPLAT0 = 17; // 9 v128 splats, one per scalar
const XG = 26, XM = 27, XV = 28; // v128 temporaries
const FG = 29, FM = 30, FV = 31; // f32 temporaries for the scalar tail

/**
 * The update, lane by lane in float32 (wasm arithmetic is IEEE-exact, never fused, so results are
 * reproducible across machines):
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*(g*g);
 *   p = p*keep - (lr*(m/bc1)) / (sqrt(v/bc2) + eps)
 * `update` emits it for f32x4 lanes (simd) or for single f32 values (the tail of n % 4 elements).
 */
function update(simd: boolean, width: number): number[] {
  const load = simd ? v128Load : op.f32Load;
  const store = simd ? v128Store : op.f32Store;
  const [add, sub, mul, div, sqrt] = simd ? [f32x4Add, f32x4Sub, f32x4Mul, f32x4Div, f32x4Sqrt] : [op.f32Add, op.f32Sub, op.f32Mul, op.f32Div, op.f32Sqrt];
  const [xg, xm, xv] = simd ? [XG, XM, XV] : [FG, FM, FV];
  const k = (scalar: (typeof SCALARS)[number]): number[] => op.get((simd ? SPLAT0 : S0) + SCALARS.indexOf(scalar));
  const addr = (base: number): number[] => [...op.get(base), ...op.get(OFF), ...op.i32Add];
  return [
    ...addr(G), ...load, ...op.set(xg),
    ...addr(M),
    ...k('beta1'), ...addr(M), ...load, ...mul, ...k('oneMinusBeta1'), ...op.get(xg), ...mul, ...add,
    ...op.tee(xm), ...store,
    ...addr(V),
    ...k('beta2'), ...addr(V), ...load, ...mul, ...k('oneMinusBeta2'), ...op.get(xg), ...op.get(xg), ...mul, ...mul, ...add,
    ...op.tee(xv), ...store,
    ...addr(P),
    ...addr(P), ...load, ...k('keep'), ...mul,
    ...k('lr'), ...op.get(xm), ...k('bc1'), ...div, ...mul,
    ...op.get(xv), ...k('bc2'), ...div, ...sqrt, ...k('eps'), ...add,
    ...div, ...sub,
    ...store,
    ...op.get(OFF), ...op.i32Const(width), ...op.i32Add, ...op.set(OFF),
  ];
}

function loopUntil(limit: number, body: number[]): number[] {
  return [...op.block, ...op.loop, ...op.get(OFF), ...op.get(limit), ...op.i32GeU, ...op.brIf(1), ...body, ...op.br(0), ...op.end, ...op.end];
}

function buildModule(): Uint8Array {
  const body: number[] = [];
  // END4 = (n & ~3) * 4 and END = n * 4: the byte offsets where the vector loop and the scalar tail stop.
  body.push(...op.get(N), ...op.i32Const(-4), ...op.i32And, ...op.i32Const(2), ...op.i32Shl, ...op.set(END4));
  body.push(...op.get(N), ...op.i32Const(2), ...op.i32Shl, ...op.set(END));
  SCALARS.forEach((_, i) => body.push(...op.get(S0 + i), ...f32x4Splat, ...op.set(SPLAT0 + i)));
  body.push(...loopUntil(END4, update(true, 16)), ...loopUntil(END, update(false, 4)), ...op.end);
  const locals = vector([[...uleb(3), I32], [...uleb(12), V128], [...uleb(3), F32]]);
  const func = [...locals, ...body];

  const params = [I32, I32, I32, I32, I32, ...SCALARS.map(() => F32)];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector([[0x60, ...vector(params.map((t) => [t])), 0]])),
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vector([uleb(0)])),
    ...section(7, vector([[...name('adamw'), 0x00, ...uleb(0)]])),
    ...section(10, vector([[...uleb(func.length), ...func]])),
  ]);
}

/** Signed LEB128 (for negative i32 constants). */
function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

type AdamwFn = (p: number, g: number, m: number, v: number, n: number, ...scalars: number[]) => void;

// The project compiles without the DOM lib, which is where TypeScript declares WebAssembly's JS API;
// this is the slice used here.
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE_BYTES = 65_536;
const MAX_PAGES = 65_536;
let compiled: object | undefined;

export interface AdamwKernel {
  /** The kernel's whole memory as floats: the caller lays out m, v and scratch space in it. */
  readonly heap: Float32Array;
  /** Runs the update; pointers are byte offsets into `heap`, scalars in `SCALARS` order. */
  readonly run: AdamwFn;
}

/** A kernel instance with its own fixed-size memory of `floats` elements, or undefined when that exceeds 4 GiB. */
export function createAdamwKernel(floats: number): AdamwKernel | undefined {
  const pages = Math.ceil((floats * 4) / PAGE_BYTES);
  if (pages > MAX_PAGES) return undefined;
  compiled ??= new wasm.Module(buildModule());
  // Fixed size: growing would detach every view handed out over the memory.
  const memory = new wasm.Memory({ initial: pages, maximum: pages });
  const instance = new wasm.Instance(compiled, { env: { memory } });
  return { heap: new Float32Array(memory.buffer), run: instance.exports['adamw'] as AdamwFn };
}
