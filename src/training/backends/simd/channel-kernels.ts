/**
 * Per-channel streaming kernels for channels-last tensors, in WebAssembly SIMD over the tfjs wasm heap.
 *
 * A channels-last tensor flattened is periodic in its channel with period C, so with L = lcm(C, 4) every
 * run of L floats sees the same channel pattern: per-channel vectors are tiled to length L and the data is
 * walked in L-float chunks, 4 lanes at a time, for any C (pruned widths are arbitrary). The JS side handles
 * the leftover elements, flushes float32 partial sums into float64 every block, and falls back to plain JS
 * when the module cannot share the backend's memory.
 */
import { assembleModule, i32, op, v128, type FunctionDef } from './assembler.js';

const at = (...parts: number[]): number[] => {
  const out: number[] = [...op.get(parts[0])];
  for (const p of parts.slice(1)) out.push(...op.get(p), ...op.add);
  return out;
};

/** for (p = start; p < end; p += span) for (j = 0; j < span; j += 16) inner — p is param 0, end param 1, span param 2. */
function chunkLoop(j: number, inner: number[][]): number[][] {
  return [
    op.block, op.loop,
    at(0), op.get(1), op.geU, op.brIf(1),
    op.i32(0), op.set(j),
    op.loop,
    ...inner,
    op.get(j), op.i32(16), op.add, op.tee(j), op.get(2), op.ltU, op.brIf(0),
    op.end,
    op.get(0), op.get(2), op.add, op.set(0),
    op.br(0),
    op.end, op.end,
  ];
}

/** acc[j] += value (value left on the stack by `value`). */
const accumulate = (acc: number, j: number, value: number[][]): number[][] => [at(acc, j), at(acc, j), op.load, ...value, op.fadd, op.store];

// sums(x, end, span, shift, acc1, acc2): acc1 += x - shift; acc2 += (x - shift)^2
const sums: FunctionDef = {
  name: 'sums',
  params: [i32, i32, i32, i32, i32, i32],
  locals: [i32, v128],
  body: chunkLoop(6, [
    at(0, 6), op.load, at(3, 6), op.load, op.fsub, op.set(7),
    ...accumulate(4, 6, [op.get(7)]),
    ...accumulate(5, 6, [op.get(7), op.get(7), op.fmul]),
  ]),
};

// dotSums(dy, end, span, xDelta, shift, acc1, acc2): acc1 += dy; acc2 += dy * (x - shift), x at dy + xDelta
const dotSums: FunctionDef = {
  name: 'dotSums',
  params: [i32, i32, i32, i32, i32, i32, i32],
  locals: [i32, v128],
  body: chunkLoop(7, [
    at(0, 7), op.load, op.set(8),
    ...accumulate(5, 7, [op.get(8)]),
    ...accumulate(6, 7, [op.get(8), at(0, 3, 7), op.load, at(4, 7), op.load, op.fsub, op.fmul]),
  ]),
};

// affine(x, end, span, yDelta, a, b): y = x * a + b, y at x + yDelta
const affine: FunctionDef = {
  name: 'affine',
  params: [i32, i32, i32, i32, i32, i32],
  locals: [i32],
  body: chunkLoop(6, [
    at(0, 3, 6), at(0, 6), op.load, at(4, 6), op.load, op.fmul, at(5, 6), op.load, op.fadd, op.store,
  ]),
};

// affine2(dy, end, span, xDelta, outDelta, a, b, c): out = dy * a + x * b + c
const affine2: FunctionDef = {
  name: 'affine2',
  params: [i32, i32, i32, i32, i32, i32, i32, i32],
  locals: [i32],
  body: chunkLoop(8, [
    at(0, 4, 8),
    at(0, 8), op.load, at(5, 8), op.load, op.fmul,
    at(0, 3, 8), op.load, at(6, 8), op.load, op.fmul, op.fadd,
    at(7, 8), op.load, op.fadd,
    op.store,
  ]),
};

interface SimdExports {
  sums(x: number, end: number, span: number, shift: number, acc1: number, acc2: number): void;
  dotSums(dy: number, end: number, span: number, xDelta: number, shift: number, acc1: number, acc2: number): void;
  affine(x: number, end: number, span: number, yDelta: number, a: number, b: number): void;
  affine2(dy: number, end: number, span: number, xDelta: number, outDelta: number, a: number, b: number, c: number): void;
}

/** What we need from the tfjs wasm module (emscripten): its memory and allocator. */
export interface WasmHeap {
  asm: { memory: WebAssembly.Memory };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPF32: Float32Array;
}

const instances = new WeakMap<WebAssembly.Memory, SimdExports | null>();
let moduleBytes: Uint8Array<ArrayBuffer> | undefined;

/** The SIMD kernels bound to this heap's memory, or null where the engine lacks SIMD or the memory is shared. */
export function simdKernelsFor(heap: WasmHeap): SimdExports | null {
  const memory = heap.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!instances.has(memory)) {
    try {
      moduleBytes ??= assembleModule([sums, dotSums, affine, affine2]);
      const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes), { env: { memory } });
      instances.set(memory, instance.exports as unknown as SimdExports);
    } catch {
      instances.set(memory, null);
    }
  }
  return instances.get(memory) ?? null;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Period of the channel pattern in floats: lcm(C, 4). */
export function periodOf(channels: number): number {
  return (channels * 4) / gcd(channels, 4);
}

/** Scratch vectors on the heap, tiled per channel to the period; freed by `free`. */
class Tiles {
  readonly ptr: number;
  constructor(private readonly heap: WasmHeap, readonly period: number, count: number) {
    this.ptr = heap._malloc(period * 4 * count);
  }
  address(k: number): number {
    return this.ptr + k * this.period * 4;
  }
  view(k: number): Float32Array {
    return this.heap.HEAPF32.subarray(this.address(k) / 4, this.address(k) / 4 + this.period);
  }
  /** Writes per-channel values into tile k, repeated over the period. */
  fill(k: number, perChannel: ArrayLike<number>): void {
    const v = this.view(k);
    for (let j = 0; j < this.period; j++) v[j] = perChannel[j % perChannel.length];
  }
  free(): void {
    this.heap._free(this.ptr);
  }
}

/** Floats per SIMD call between float64 flushes of the float32 partial sums. */
const BLOCK = 1 << 14;

function blockLength(period: number): number {
  return Math.max(period, Math.floor(BLOCK / period) * period);
}

/** Two per-channel float64 sums. */
export interface ChannelSums {
  s1: Float64Array;
  s2: Float64Array;
}

/**
 * The reduction both sums share: whole periods of the channel pattern go through a SIMD kernel into two tiles
 * (tile 0 holds the shift), folded per channel in float64; the tail that does not fill a period is summed in JS.
 */
function reduceChannels(
  heap: WasmHeap,
  length: number,
  channels: number,
  shift: ArrayLike<number>,
  simdBlock: (start: number, n: number, period: number, tiles: Tiles) => void,
  tail: (i: number, c: number, sums: ChannelSums) => void,
): ChannelSums {
  const period = periodOf(channels);
  const tiles = new Tiles(heap, period, 3);
  const sums: ChannelSums = { s1: new Float64Array(channels), s2: new Float64Array(channels) };
  try {
    tiles.fill(0, shift);
    const main = length - (length % period);
    const block = blockLength(period);
    for (let start = 0; start < main; start += block) {
      const n = Math.min(block, main - start);
      tiles.view(1).fill(0);
      tiles.view(2).fill(0);
      simdBlock(start, n, period, tiles);
      const a1 = tiles.view(1);
      const a2 = tiles.view(2);
      for (let j = 0; j < period; j++) {
        sums.s1[j % channels] += a1[j];
        sums.s2[j % channels] += a2[j];
      }
    }
    for (let i = main; i < length; i++) tail(i, i % channels, sums);
  } finally {
    tiles.free();
  }
  return sums;
}

/**
 * Per-channel sums of (x - shift) and (x - shift)^2 for x on the heap at byte offset xPtr, `length` floats.
 * Returns float64 totals; the shift (one sample per channel) keeps the variance free of cancellation.
 */
export function channelSums(heap: WasmHeap, simd: SimdExports, xPtr: number, length: number, channels: number, shift: ArrayLike<number>): ChannelSums {
  return reduceChannels(
    heap,
    length,
    channels,
    shift,
    (start, n, period, tiles) =>
      simd.sums(xPtr + start * 4, xPtr + (start + n) * 4, period * 4, tiles.address(0), tiles.address(1), tiles.address(2)),
    (i, c, sums) => {
      // Read the heap view here: allocating the tiles may have grown wasm memory and replaced it.
      const v = heap.HEAPF32[xPtr / 4 + i] - shift[c];
      sums.s1[c] += v;
      sums.s2[c] += v * v;
    },
  );
}

/** Per-channel sums of dy and dy * (x - shift), both on the heap. */
export function channelDotSums(heap: WasmHeap, simd: SimdExports, dyPtr: number, xPtr: number, length: number, channels: number, shift: ArrayLike<number>): ChannelSums {
  return reduceChannels(
    heap,
    length,
    channels,
    shift,
    (start, n, period, tiles) =>
      simd.dotSums(dyPtr + start * 4, dyPtr + (start + n) * 4, period * 4, xPtr - dyPtr, tiles.address(0), tiles.address(1), tiles.address(2)),
    (i, c, sums) => {
      const h = heap.HEAPF32;
      const g = h[dyPtr / 4 + i];
      sums.s1[c] += g;
      sums.s2[c] += g * (h[xPtr / 4 + i] - shift[c]);
    },
  );
}

/** out = x * a[c] + b[c] (+ z * d[c] when z is given), elementwise over heap tensors. */
export function channelAffine(heap: WasmHeap, simd: SimdExports, xPtr: number, outPtr: number, length: number, a: ArrayLike<number>, b: ArrayLike<number>, z?: { ptr: number; scale: ArrayLike<number> }): void {
  const channels = a.length;
  const period = periodOf(channels);
  const tiles = new Tiles(heap, period, 3);
  try {
    tiles.fill(0, a);
    tiles.fill(1, b);
    const main = length - (length % period);
    if (main > 0) {
      if (z == null) {
        simd.affine(xPtr, xPtr + main * 4, period * 4, outPtr - xPtr, tiles.address(0), tiles.address(1));
      } else {
        tiles.fill(2, z.scale);
        // affine2 computes out = x*a + z*scale + b with x as the stream and z at a fixed offset from it.
        simd.affine2(xPtr, xPtr + main * 4, period * 4, z.ptr - xPtr, outPtr - xPtr, tiles.address(0), tiles.address(2), tiles.address(1));
      }
    }
    const h = heap.HEAPF32;
    for (let i = main; i < length; i++) {
      const c = i % channels;
      let v = h[xPtr / 4 + i] * a[c] + b[c];
      if (z != null) v += h[z.ptr / 4 + i] * z.scale[c];
      h[outPtr / 4 + i] = v;
    }
  } finally {
    tiles.free();
  }
}
