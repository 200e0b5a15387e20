/**
 * The depthwise filter gradient in WebAssembly SIMD: dW[kh,kw,c] = sum over n,oh,ow of
 * xPadded[n, s*oh + kh, s*ow + kw, c] * dy[n, oh, ow, c]. Channels are contiguous, so 4 channels per lane
 * vector; one call reduces one output row for one filter tap, with the accumulator in a register.
 * (Per-tap wasm kernels took ~20x the forward conv's time.)
 */
import { assembleModule, i32, op, v128, type FunctionDef } from './assembler.js';
import type { WasmHeap } from './channel-kernels.js';

const at = (a: number, b: number): number[] => [...op.get(a), ...op.get(b), ...op.add];

// dwRow(x, dy, count, xStride, dyStride, chunkBytes, acc): for each 16-byte channel chunk j < chunkBytes,
// acc[j] += sum over i < count of x[j + i*xStride] * dy[j + i*dyStride]
const dwRow: FunctionDef = {
  name: 'dwRow',
  params: [i32, i32, i32, i32, i32, i32, i32],
  locals: [i32, i32, i32, i32, v128],
  body: [
    op.i32(0), op.set(7),
    op.block, op.loop,
    op.get(7), op.get(5), op.geU, op.brIf(1),
    at(6, 7), op.load, op.set(11),
    at(0, 7), op.set(9),
    at(1, 7), op.set(10),
    op.get(2), op.set(8),
    op.block, op.loop,
    op.get(8), op.eqz, op.brIf(1),
    op.get(11), op.get(9), op.load, op.get(10), op.load, op.fmul, op.fadd, op.set(11),
    at(9, 3), op.set(9),
    at(10, 4), op.set(10),
    op.get(8), op.i32(1), op.sub, op.set(8),
    op.br(0),
    op.end, op.end,
    at(6, 7), op.get(11), op.store,
    op.get(7), op.i32(16), op.add, op.set(7),
    op.br(0),
    op.end, op.end,
  ],
};

interface DwExports {
  dwRow(x: number, dy: number, count: number, xStride: number, dyStride: number, chunkBytes: number, acc: number): void;
}

const instances = new WeakMap<WebAssembly.Memory, DwExports | null>();

export function depthwiseSimdFor(heap: WasmHeap): DwExports | null {
  const memory = heap.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!instances.has(memory)) {
    try {
      const module = new WebAssembly.Module(assembleModule([dwRow]));
      instances.set(memory, new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as DwExports);
    } catch {
      instances.set(memory, null);
    }
  }
  return instances.get(memory) ?? null;
}

export interface DepthwiseGeometry {
  batch: number;
  /** Padded input height and width (the window never leaves it). */
  paddedH: number;
  paddedW: number;
  channels: number;
  outH: number;
  outW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
}

/**
 * Returns dW as [kH*kW*channels] (float64 totals of per-image float32 partial sums). Channel counts that are
 * not a multiple of 4 add one overlapping chunk ending at the last channel; below 4 channels, plain JS.
 */
export function depthwiseFilterGrad(heap: WasmHeap, simd: DwExports, xPtr: number, dyPtr: number, g: DepthwiseGeometry): Float64Array {
  const { batch, paddedH, paddedW, channels: c, outH, outW, kH, kW, strideH, strideW } = g;
  const taps = kH * kW;
  const total = new Float64Array(taps * c);
  if (c < 4) return depthwiseFilterGradJs(heap, xPtr, dyPtr, g);
  const full = Math.floor(c / 4);
  const tail = c % 4 === 0 ? 0 : 1;
  const slots = (full + tail) * 4;
  const acc = heap._malloc(taps * slots * 4);
  try {
    for (let n = 0; n < batch; n++) {
      heap.HEAPF32.fill(0, acc / 4, acc / 4 + taps * slots);
      for (let oh = 0; oh < outH; oh++) {
        const dyRow = dyPtr + (n * outH + oh) * outW * c * 4;
        for (let kh = 0; kh < kH; kh++) {
          const xRow = xPtr + ((n * paddedH + strideH * oh + kh) * paddedW) * c * 4;
          for (let kw = 0; kw < kW; kw++) {
            const x0 = xRow + kw * c * 4;
            const a = acc + (kh * kW + kw) * slots * 4;
            simd.dwRow(x0, dyRow, outW, strideW * c * 4, c * 4, full * 16, a);
            if (tail) simd.dwRow(x0 + (c - 4) * 4, dyRow + (c - 4) * 4, outW, strideW * c * 4, c * 4, 16, a + full * 16);
          }
        }
      }
      const h = heap.HEAPF32;
      for (let t = 0; t < taps; t++) {
        const base = acc / 4 + t * slots;
        for (let ch = 0; ch < c; ch++) total[t * c + ch] += ch < full * 4 ? h[base + ch] : h[base + full * 4 + ch - (c - 4)];
      }
    }
  } finally {
    heap._free(acc);
  }
  return total;
}

function depthwiseFilterGradJs(heap: WasmHeap, xPtr: number, dyPtr: number, g: DepthwiseGeometry): Float64Array {
  const { batch, paddedH, paddedW, channels: c, outH, outW, kH, kW, strideH, strideW } = g;
  const h = heap.HEAPF32;
  const total = new Float64Array(kH * kW * c);
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const d = dyPtr / 4 + ((n * outH + oh) * outW + ow) * c;
        for (let kh = 0; kh < kH; kh++) {
          for (let kw = 0; kw < kW; kw++) {
            const x = xPtr / 4 + ((n * paddedH + strideH * oh + kh) * paddedW + strideW * ow + kw) * c;
            for (let ch = 0; ch < c; ch++) total[(kh * kW + kw) * c + ch] += h[x + ch] * h[d + ch];
          }
        }
      }
    }
  }
  return total;
}
