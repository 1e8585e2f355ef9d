// The AdamW update as ONE fused ONNX graph run by ONNX Runtime, against @mstar/optim's WebAssembly
// SIMD kernel, in ns/param/step (best of several; the machine is shared). This measurement is why
// @mstar/optim keeps the WASM kernel (see README). Usage: bench:adamw-onnx [params] [intraOpThreads]
import { GraphBuilder, toModel } from '@mstar/graph';
import type { Value } from '@mstar/graph';
import { AdamW, ParamLayout } from '@mstar/optim';
import { createSession, tensor } from '@mstar/runtime';
import type { PlainTensor } from '@mstar/runtime';

const n = Number(process.argv[2] ?? 5_000_000);
const threads = Number(process.argv[3] ?? 2);
const reps = 8;

// Same float32 operation order as the WASM kernel: m = b1*m + c1*g; v = b2*v + c2*g*g;
// p = p*keep - lr*(m/bc1) / (sqrt(v/bc2) + eps).
const g = new GraphBuilder('adamw');
const flat = (name: string): Value => g.input(name, 'float32', [n]);
const scalar = (name: string): Value => g.input(name, 'float32', []);
const [p, grad, m, v] = [flat('p'), flat('g'), flat('m'), flat('v')];
const [b1, b2, c1, c2, bc1, bc2, lr, eps, keep] = ['b1', 'b2', 'c1', 'c2', 'bc1', 'bc2', 'lr', 'eps', 'keep'].map(scalar) as [Value, Value, Value, Value, Value, Value, Value, Value, Value];
const m2 = g.add(g.mul(b1, m), g.mul(c1, grad));
const v2 = g.add(g.mul(b2, v), g.mul(c2, g.mul(grad, grad)));
const p2 = g.sub(g.mul(p, keep), g.div(g.mul(lr, g.div(m2, bc1)), g.add(g.sqrt(g.div(v2, bc2)), eps)));
g.output(p2, 'p_out');
g.output(m2, 'm_out');
g.output(v2, 'v_out');
const session = await createSession(toModel(g), { device: 'cpu', intraOpThreads: threads });

const params = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.02);
const grads = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 1e-3);
const s = (x: number): PlainTensor => tensor('float32', [], new Float32Array([x]));
const state = { p: params.slice(), m: new Float32Array(n), v: new Float32Array(n) };
let bestOnnx = Infinity;
let lastSplit = '';
for (let r = 0; r < reps + 2; r++) {
  const t0 = performance.now();
  const out = await session.run({
    p: tensor('float32', [n], state.p), g: tensor('float32', [n], grads), m: tensor('float32', [n], state.m), v: tensor('float32', [n], state.v),
    b1: s(0.9), b2: s(0.999), c1: s(0.1), c2: s(0.001), bc1: s(0.1), bc2: s(0.001), lr: s(1e-3), eps: s(1e-8), keep: s(1 - 1e-5),
  });
  const t1 = performance.now();
  // An optimizer keeping params/m/v in place has to copy the outputs back.
  state.p.set(out['p_out']!.data as Float32Array);
  state.m.set(out['m_out']!.data as Float32Array);
  state.v.set(out['v_out']!.data as Float32Array);
  const t2 = performance.now();
  if (r >= 2 && t2 - t0 < bestOnnx * n * 1e-6) lastSplit = `graph ${(t1 - t0).toFixed(1)} ms + copy-back ${(t2 - t1).toFixed(1)} ms`;
  if (r >= 2) bestOnnx = Math.min(bestOnnx, ((t2 - t0) * 1e6) / n);
}
await session.release();

const opt = new AdamW(new ParamLayout([['w', [n]]]), { schedule: { kind: 'constant', lr: 1e-3 } });
const wasmParams = params.slice();
let bestWasm = Infinity;
for (let r = 0; r < reps + 2; r++) {
  const t0 = performance.now();
  opt.step(wasmParams, grads);
  if (r >= 2) bestWasm = Math.min(bestWasm, ((performance.now() - t0) * 1e6) / n);
}
console.log(`onnx best step: ${lastSplit}`);
console.log(JSON.stringify({ params: n, intraOpThreads: threads, onnx_ns_per_param: Number(bestOnnx.toFixed(2)), wasm_ns_per_param: Number(bestWasm.toFixed(2)), onnx_over_wasm: Number((bestOnnx / bestWasm).toFixed(2)) }));
