/**
 * Gradients of ReLU, ReLU6 and clipByValue in one SIMD pass: dx = dy where lo < x <= hi (or lo <= x <= hi),
 * else 0. tfjs composes each from 3-5 full-size kernels (cast, step, compare, multiply, where).
 */
import { assembleModule, f32, i32, op, v128, type FunctionDef } from './assembler.js';
import type { WasmHeap } from './channel-kernels.js';

const at = (...parts: number[]): number[] => {
  const out: number[] = [...op.get(parts[0])];
  for (const p of parts.slice(1)) out.push(...op.get(p), ...op.add);
  return out;
};

/** mask(dy, end, xDelta, outDelta, lo, hi): out = dy & (x OP lo) & (x <= hi), 4 floats per step. */
function maskFunction(name: string, lowerOp: number[]): FunctionDef {
  return {
    name,
    params: [i32, i32, i32, i32, f32, f32],
    locals: [v128, v128],
    body: [
      op.get(4), op.splat, op.set(6),
      op.get(5), op.splat, op.set(7),
      op.block, op.loop,
      op.get(0), op.get(1), op.geU, op.brIf(1),
      at(0, 3),
      op.get(0), op.load,
      at(0, 2), op.load, op.get(6), lowerOp, op.and,
      at(0, 2), op.load, op.get(7), op.fle, op.and,
      op.store,
      op.get(0), op.i32(16), op.add, op.set(0),
      op.br(0),
      op.end, op.end,
    ],
  };
}

interface MaskExports {
  maskAbove(dy: number, end: number, xDelta: number, outDelta: number, lo: number, hi: number): void;
  maskFrom(dy: number, end: number, xDelta: number, outDelta: number, lo: number, hi: number): void;
}

const instances = new WeakMap<WebAssembly.Memory, MaskExports | null>();

export function maskGradSimdFor(heap: WasmHeap): MaskExports | null {
  const memory = heap.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!instances.has(memory)) {
    try {
      const bytes = assembleModule([maskFunction('maskAbove', op.fgt), maskFunction('maskFrom', op.fge)]);
      instances.set(memory, new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as MaskExports);
    } catch {
      instances.set(memory, null);
    }
  }
  return instances.get(memory) ?? null;
}

/** out[i] = dy[i] if x[i] is in (lo, hi] (or [lo, hi] when loInclusive), else 0; heap byte offsets. */
export function maskGrad(heap: WasmHeap, simd: MaskExports, dyPtr: number, xPtr: number, outPtr: number, length: number, lo: number, hi: number, loInclusive: boolean): void {
  const main = length - (length % 4);
  const run = loInclusive ? simd.maskFrom : simd.maskAbove;
  if (main > 0) run(dyPtr, dyPtr + main * 4, xPtr - dyPtr, outPtr - dyPtr, lo, hi);
  const h = heap.HEAPF32;
  for (let i = main; i < length; i++) {
    const x = h[xPtr / 4 + i];
    h[outPtr / 4 + i] = (loInclusive ? x >= lo : x > lo) && x <= hi ? h[dyPtr / 4 + i] : 0;
  }
}
