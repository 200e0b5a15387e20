/**
 * Conv2DBackpropFilter on wasm (not shipped by tfjs-backend-wasm 4.22).
 *
 * dW[kh,kw,ci,co] = sum over n,oh,ow of x[n, oh*s + kh - pad, ow*s + kw - pad, ci] * dy[n,oh,ow,co].
 * Seen from the right layout this is itself a forward convolution, which XNNPACK runs fast: images are the
 * input channels ci, the "channels" are the batch n, the "filter" is dy laid out [OH, OW, n, co], applied with
 * dilation = stride and producing a KH x KW output. 1x1 filters are a plain matrix product instead.
 */
import * as tf from '@tensorflow/tfjs';
import { WasmScope, explicitPad, type TensorInfo, type WasmBackend } from './wasm-ops.js';

type ConvInfo = tf.backend_util.Conv2DInfo;

/**
 * Bytes of dy per batch chunk. XNNPACK repacks its "filter" (here dy) on every call, and the packing cost grows
 * faster than linearly beyond the caches: for 128x28x28x16, chunks of ~32 images are ~10% faster overall.
 */
export let filterGradChunkBytes = 1.5 * 2 ** 20;

/** For benchmarks: sets the chunk size in bytes (Infinity = whole batch at once). */
export function setFilterGradChunkBytes(bytes: number): void {
  filterGradChunkBytes = bytes;
}

/** dW via a forward conv of x (as [ci, H, W, n]) with dy (as [OH, OW, n, co]), summed over batch chunks. */
export function filterGradAsConv(scope: WasmScope, x: TensorInfo, dy: TensorInfo, info: ConvInfo): TensorInfo {
  const { strideHeight: sH, strideWidth: sW, filterHeight: kH, filterWidth: kW, inHeight, inWidth, outHeight, outWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows of x beyond the last one the conv reads are cropped; a negative pad here means "crop".
  const bottom = kH + sH * (outHeight - 1) - inHeight - top;
  const right = kW + sW * (outWidth - 1) - inWidth - left;
  const [n, , , ci] = x.shape;
  const bytesPerImage = dy.shape.slice(1).reduce((a, b) => a * b, 4);
  const chunk = Math.max(1, Math.min(n, Math.floor(filterGradChunkBytes / bytesPerImage)));
  let total: TensorInfo | undefined;
  for (let begin = 0; begin < n; begin += chunk) {
    const end = Math.min(n, begin + chunk);
    const xs = scope.batchRange(x, begin, end);
    const cropped = scope.slice(xs, [0, 0, 0, 0], [end - begin, inHeight + Math.min(0, bottom), inWidth + Math.min(0, right), ci]);
    const images = scope.transpose(cropped, [3, 1, 2, 0]);
    const dyFilter = scope.transpose(scope.batchRange(dy, begin, end), [1, 2, 0, 3]);
    const part = scope.run('Conv2D', { x: images, filter: dyFilter }, {
      strides: [1, 1],
      pad: explicitPad(top, Math.max(0, bottom), left, Math.max(0, right)),
      dataFormat: 'NHWC',
      dilations: [sH, sW],
    });
    total = total == null ? part : scope.run('Add', { a: total, b: part });
  }
  return scope.transpose(total!, [1, 2, 0, 3]);
}

/** dW for a 1x1 filter: x^T dy over all sampled pixels (strided pixels picked first). */
export function filterGradPointwise(scope: WasmScope, x: TensorInfo, dy: TensorInfo, info: ConvInfo): TensorInfo {
  const [n, , , ci] = x.shape;
  const co = dy.shape[3];
  const { strideHeight: sH, strideWidth: sW, outHeight, outWidth } = info;
  const sampled = sH === 1 && sW === 1 && outHeight === x.shape[1] && outWidth === x.shape[2]
    ? x
    : scope.stridedWindow(x, 0, 0, [sH, sW], outHeight, outWidth);
  const pixels = n * outHeight * outWidth;
  // XNNPACK's fully connected path needs a batch-1, untransposed product: transpose x explicitly.
  const xT = scope.transpose(scope.reshape(sampled, [pixels, ci]), [1, 0]);
  const prod = scope.run('BatchMatMul', { a: scope.reshape(xT, [1, ci, pixels]), b: scope.reshape(dy, [1, pixels, co]) }, { transposeA: false, transposeB: false });
  return scope.reshape(prod, [1, 1, ci, co]);
}

/**
 * The im2col path wins for few input channels (first layers: 1 or 3; measured equal at 8, slower at 16),
 * while its patch matrix (taps x channels x pixels floats) stays within this many bytes.
 */
const SMALL_PATCH_CHANNELS = 4;
const MAX_PATCH_BYTES = 2 ** 28;

/**
 * dW for layers with few input channels (a network's first conv): build the transposed patch matrix
 * [KH*KW*Ci, pixels] on the heap, then one XNNPACK fully connected product with dy [pixels, Co]. The conv
 * path would pack all of dy as a filter for only Ci tiny "images", which costs far more than the arithmetic.
 */
export function filterGradSmallPatch(scope: WasmScope, x: TensorInfo, dy: TensorInfo, info: ConvInfo): TensorInfo {
  const { strideHeight: sH, strideWidth: sW, filterHeight: kH, filterWidth: kW, inHeight: h, inWidth: w, outHeight: oH, outWidth: oW, inChannels: ci, outChannels: co } = info;
  const n = x.shape[0];
  const pixels = n * oH * oW;
  const rows = kH * kW * ci;
  const patches = scope.backend.makeOutput([1, rows, pixels], 'float32');
  scope.adopt(patches);
  const a = scope.view(patches);
  const src = scope.view(x);
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      for (let c = 0; c < ci; c++) {
        let d = ((kh * kW + kw) * ci + c) * pixels;
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < oH; i++) {
            const ih = i * sH + kh - top;
            if (ih < 0 || ih >= h) {
              a.fill(0, d, d + oW);
              d += oW;
              continue;
            }
            const rowBase = (b * h + ih) * w;
            for (let j = 0; j < oW; j++, d++) {
              const iw = j * sW + kw - left;
              a[d] = iw >= 0 && iw < w ? src[(rowBase + iw) * ci + c] : 0;
            }
          }
        }
      }
    }
  }
  const prod = scope.run('BatchMatMul', { a: patches, b: scope.reshape(dy, [1, pixels, co]) }, { transposeA: false, transposeB: false });
  return scope.reshape(prod, [kH, kW, ci, co]);
}

function conv2DBackpropFilter({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const scope = new WasmScope(backend as WasmBackend);
  const pointwise = info.filterHeight === 1 && info.filterWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0;
  const patchBytes = 4 * info.filterHeight * info.filterWidth * info.inChannels * info.batchSize * info.outHeight * info.outWidth;
  const smallPatch = !pointwise && info.inChannels <= SMALL_PATCH_CHANNELS && patchBytes <= MAX_PATCH_BYTES;
  const dW = pointwise ? filterGradPointwise(scope, x, dy, info) : smallPatch ? filterGradSmallPatch(scope, x, dy, info) : filterGradAsConv(scope, x, dy, info);
  return scope.done(dW);
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
