/** Calls into the wasm backend's own kernels from inside our kernels, so every intermediate stays on the wasm heap. */
import * as tf from '@tensorflow/tfjs';

export type TensorInfo = tf.TensorInfo;
type Attrs = Record<string, unknown>;

/** The parts of tfjs-backend-wasm's BackendWasm that our kernels use (its class is not exported with types we can reach). */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.TypedArray): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: unknown, force?: boolean): boolean;
  readSync(dataId: unknown): tf.backend_util.BackendValues;
}

/**
 * A scope for one kernel call: runs wasm kernels directly (no engine bookkeeping, no gradient tape)
 * and frees every intermediate it made when `done` is called with the result to keep.
 */
export class WasmScope {
  private readonly temps: TensorInfo[] = [];
  constructor(readonly backend: WasmBackend) {}

  run(kernelName: string, inputs: Record<string, TensorInfo>, attrs: Attrs = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (kernel == null) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = kernel.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, attrs: attrs as tf.NamedAttrMap, backend: this.backend as never }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** Takes ownership of a tensor made directly with backend.makeOutput (freed by `done` unless returned). */
  adopt(info: TensorInfo): TensorInfo {
    this.temps.push(info);
    return info;
  }

  /** A float32 tensor on the heap filled from `values` (small constants such as rearranged filters). */
  fromValues(shape: number[], values: Float32Array): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32', undefined, values);
    this.temps.push(out);
    return out;
  }

  /** A view of a tensor's float32 data on the wasm heap; valid until the next allocation (the heap may grow). */
  view(info: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(info);
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  /**
   * Interleaves stride phases into space and crops: out[n, sH*i + rh, sW*j + rw, :] = phases[rh][rw][n, i, j, :]
   * for positions inside outShape, by pixel copies on the heap (cheaper than concat + transpose here).
   * A null phase is all zeros. All phases share one shape.
   */
  interleavePhases(phases: (TensorInfo | null)[][], outShape: number[]): TensorInfo {
    const [n, h, w, c] = outShape;
    const sH = phases.length;
    const sW = phases[0].length;
    const [, ph, pw] = phases.flat().find((p) => p != null)!.shape;
    const out = this.backend.makeOutput(outShape, 'float32');
    this.temps.push(out);
    const dst = this.view(out);
    const heap = new Float32Array(dst.buffer);
    const bases = phases.map((row) => row.map((p) => (p == null ? -1 : this.view(p).byteOffset / 4)));
    const outBase = dst.byteOffset / 4;
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < h; y++) {
        const i = Math.floor(y / sH);
        const rowBases = bases[y % sH];
        let d = outBase + (b * h + y) * w * c;
        for (let x = 0; x < w; x++, d += c) {
          const base = rowBases[x % sW];
          if (base < 0) {
            heap.fill(0, d, d + c);
            continue;
          }
          const s = base + ((b * ph + i) * pw + Math.floor(x / sW)) * c;
          heap.copyWithin(d, s, s + c);
        }
      }
    }
    return out;
  }

  /** Images [begin, end) of a batch, copied (wasm's Slice kernel first copies the whole tensor off the heap). */
  batchRange(x: TensorInfo, begin: number, end: number): TensorInfo {
    if (begin === 0 && end === x.shape[0]) return x;
    const perImage = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const out = this.backend.makeOutput([end - begin, ...x.shape.slice(1)], 'float32');
    this.temps.push(out);
    const src = this.view(x);
    const dst = this.view(out);
    dst.set(src.subarray(begin * perImage, end * perImage));
    return out;
  }

  /**
   * x[:, top + sH*i, left + sW*j, :] for i < outH, j < outW (all inside x), by row copies on the heap:
   * wasm's StridedSlice kernel is an element-by-element loop ~50x slower than this.
   */
  stridedWindow(x: TensorInfo, top: number, left: number, strides: [number, number], outH: number, outW: number): TensorInfo {
    const [n, h, w, c] = x.shape;
    const [sH, sW] = strides;
    const out = this.backend.makeOutput([n, outH, outW, c], 'float32');
    this.temps.push(out);
    const src = this.view(x);
    const dst = this.view(out);
    const heap = new Float32Array(src.buffer);
    const srcBase = src.byteOffset / 4;
    let d = dst.byteOffset / 4;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < outH; i++) {
        let s = srcBase + ((b * h + top + sH * i) * w + left) * c;
        for (let j = 0; j < outW; j++, s += sW * c, d += c) heap.copyWithin(d, s, s + c);
      }
    }
    return out;
  }

  /**
   * Frees every intermediate except the returned tensors. Frees by object, not by dataId: a reshape shares its
   * source's dataId and holds its own reference, so the source's reference must still be released.
   */
  done<T extends TensorInfo | TensorInfo[]>(keep: T): T {
    const list = Array.isArray(keep) ? keep : [keep];
    const owned = list.map((k) => (this.temps.includes(k) ? k : this.run('Identity', { x: k })));
    const kept = new Set(owned);
    for (const t of this.temps) if (!kept.has(t)) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
    return (Array.isArray(keep) ? owned : owned[0]) as T;
  }
}

/** Explicit NHWC pads in the form the conv kernels accept. */
export function explicitPad(top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}
