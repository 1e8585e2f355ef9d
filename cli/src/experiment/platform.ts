import { readFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';

/**
 * The machine a run trained on, as far as its floating-point results depend on it. ONNX Runtime's
 * CPU kernels (MLAS) pick their code path by the vector instructions the CPU has, and two paths sum
 * in different orders: the same spec and seed train bit-identical weights on one machine, run after
 * run, but not always on a machine with other instructions. A warm-up near a transition then ends
 * far apart (seed 3 of tally-worked-few: 59.6% in-domain on an Intel Xeon and two AMD EPYCs with
 * AVX-512, 39.6% on an AMD EPYC with AVX2 alone).
 */
export interface Platform {
  /** process.arch */
  readonly arch: string;
  /** The CPU's model name. */
  readonly cpu: string;
  /** Which of the x86 vector extensions MLAS dispatches float kernels on the CPU has (Linux; empty elsewhere). */
  readonly simd: readonly string[];
}

/** The x86 extensions that choose MLAS's float kernels, widest first. */
const SIMD = ['avx512f', 'avx2', 'fma', 'avx'] as const;

/** The CPU flags /proc/cpuinfo lists ('flags' on x86), or none where there is no such file. */
function cpuFlags(): Set<string> {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return new Set();
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  return new Set(line?.[1]?.trim().split(/\s+/) ?? []);
}

export function currentPlatform(): Platform {
  const flags = cpuFlags();
  return { arch: arch(), cpu: cpus()[0]?.model.trim() ?? 'unknown', simd: SIMD.filter((f) => flags.has(f)) };
}

export const describePlatform = (p: Platform): string => `${p.cpu} (${p.arch}${p.simd.length === 0 ? '' : `, ${p.simd.join(' ')}`})`;
