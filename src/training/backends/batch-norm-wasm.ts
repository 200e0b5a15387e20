/** The fused batch-norm kernels on the wasm backend: SIMD passes over the heap (see simd/channel-kernels). */
import type * as tf from '@tensorflow/tfjs';
import { channelAffine, channelDotSums, channelSums, simdKernelsFor, type WasmHeap } from './simd/channel-kernels.js';

interface WasmBackendLike {
  wasm: WasmHeap;
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

/** Byte offset of a tensor's data on the heap. */
function pointer(backend: WasmBackendLike, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}

/** Copies a small per-channel tensor off the heap (views die when the heap grows). */
function perChannel(backend: WasmBackendLike, info: tf.TensorInfo): Float64Array {
  return Float64Array.from(backend.typedArrayFromHeap(info));
}

/** Forward: [y, mean, variance]; null when SIMD is unavailable (the caller falls back to JS loops). */
export function batchNormTrainSimd({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] | null {
  const b = backend as WasmBackendLike;
  const simd = simdKernelsFor(b.wasm);
  if (simd == null) return null;
  const { x, scale, offset } = inputs as Record<'x' | 'scale' | 'offset', tf.TensorInfo>;
  const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  const channels = x.shape[x.shape.length - 1];
  const length = x.shape.reduce((p, s) => p * s, 1);
  const count = length / channels;
  const y = b.makeOutput(x.shape, 'float32');
  const meanOut = b.makeOutput([channels], 'float32');
  const varianceOut = b.makeOutput([channels], 'float32');
  const shift = Float64Array.from(b.typedArrayFromHeap(x).subarray(0, channels));
  const { s1, s2 } = channelSums(b.wasm, simd, pointer(b, x), length, channels, shift);
  const gamma = perChannel(b, scale);
  const beta = perChannel(b, offset);
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  const a = new Float64Array(channels);
  const c0 = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const d = s1[c] / count;
    mean[c] = shift[c] + d;
    variance[c] = Math.max(0, s2[c] / count - d * d);
    a[c] = gamma[c] / Math.sqrt(variance[c] + epsilon);
    c0[c] = beta[c] - mean[c] * a[c];
  }
  channelAffine(b.wasm, simd, pointer(b, x), pointer(b, y), length, a, c0);
  b.typedArrayFromHeap(meanOut).set(mean);
  b.typedArrayFromHeap(varianceOut).set(variance);
  return [y, meanOut, varianceOut];
}

/** Backward: [dx, dScale, dOffset]; null when SIMD is unavailable. */
export function batchNormTrainGradSimd({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] | null {
  const b = backend as WasmBackendLike;
  const simd = simdKernelsFor(b.wasm);
  if (simd == null) return null;
  const { dy, x, scale, mean, variance } = inputs as Record<'dy' | 'x' | 'scale' | 'mean' | 'variance', tf.TensorInfo>;
  const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  const channels = x.shape[x.shape.length - 1];
  const length = x.shape.reduce((p, s) => p * s, 1);
  const count = length / channels;
  const dx = b.makeOutput(x.shape, 'float32');
  const dScaleOut = b.makeOutput([channels], 'float32');
  const dOffsetOut = b.makeOutput([channels], 'float32');
  const mu = perChannel(b, mean);
  const sigma2 = perChannel(b, variance);
  const gamma = perChannel(b, scale);
  // Shifting by the batch mean makes the second sum sum(dy * (x - mean)) directly.
  const { s1: sumDy, s2: sumDyCentered } = channelDotSums(b.wasm, simd, pointer(b, dy), pointer(b, x), length, channels, mu);
  const kDy = new Float64Array(channels);
  const kX = new Float64Array(channels);
  const k0 = new Float64Array(channels);
  const dScale = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const rstd = 1 / Math.sqrt(sigma2[c] + epsilon);
    dScale[c] = rstd * sumDyCentered[c];
    kDy[c] = gamma[c] * rstd;
    kX[c] = (-gamma[c] * rstd * rstd * dScale[c]) / count;
    k0[c] = (-gamma[c] * rstd * sumDy[c]) / count - kX[c] * mu[c];
  }
  channelAffine(b.wasm, simd, pointer(b, dy), pointer(b, dx), length, kDy, k0, { ptr: pointer(b, x), scale: kX });
  b.typedArrayFromHeap(dScaleOut).set(dScale);
  b.typedArrayFromHeap(dOffsetOut).set(sumDy);
  return [dx, dScaleOut, dOffsetOut];
}
