/**
 * Depthwise conv gradients on wasm (neither is shipped by tfjs-backend-wasm 4.22), channel multiplier 1, NHWC.
 *  - input gradient: the sub-pixel transposed conv of conv2d-backprop-input, one XNNPACK depthwise conv per
 *    stride phase, interleaved on the heap;
 *  - filter gradient: a SIMD row reduction per filter tap over the padded input (simd/depthwise-filter-grad),
 *    or, without SIMD, per tap a strided window times dy summed by wasm kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { planAxis, type AxisPlan } from './transposed-conv-plan.js';
import { cropForPlan } from './conv2d-backprop-input.js';
import { WasmScope, type TensorInfo, type WasmBackend } from './wasm-ops.js';
import { depthwiseFilterGrad, depthwiseSimdFor } from '../simd/depthwise-filter-grad.js';
import type { WasmHeap } from '../simd/channel-kernels.js';

/** The filter [LH, LW, C, 1] of one stride phase: flipped taps that reach this phase, zeros elsewhere. */
function depthwisePhaseFilter(w: Float32Array, shape: number[], rows: AxisPlan, cols: AxisPlan, rh: number, rw: number): Float32Array {
  const [, kw, channels] = shape;
  const f = new Float32Array(rows.length * cols.length * channels);
  for (let jh = 0; jh < rows.length; jh++) {
    const kh = rows.taps[rh][jh];
    if (kh < 0) continue;
    for (let jw = 0; jw < cols.length; jw++) {
      const k = cols.taps[rw][jw];
      if (k < 0) continue;
      f.set(w.subarray((kh * kw + k) * channels, (kh * kw + k + 1) * channels), (jh * cols.length + jw) * channels);
    }
  }
  return f;
}

function assertSupported(info: tf.backend_util.Conv2DInfo, kernel: string): void {
  if (info.outChannels !== info.inChannels) throw new Error(`wasm ${kernel} supports channel multiplier 1 only`);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error(`wasm ${kernel} supports dilation 1 only`);
}

function depthwiseBackpropInput({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, dilations, pad, dimRoundingMode, true);
  assertSupported(info, 'DepthwiseConv2dNativeBackpropInput');
  const scope = new WasmScope(backend as WasmBackend);
  const rows = planAxis(info.filterHeight, info.strideHeight, info.padInfo.top, info.inHeight, info.outHeight);
  const cols = planAxis(info.filterWidth, info.strideWidth, info.padInfo.left, info.inWidth, info.outWidth);
  const cropped = cropForPlan(scope, dy, rows, cols);
  // One multiplier-1 depthwise conv per stride phase: XNNPACK runs multiplier 1 ~30x faster than multiplier s*s.
  const phases = rows.taps.map((_, rh) =>
    cols.taps.map((__, rw) => {
      const f = scope.fromValues([rows.length, cols.length, info.inChannels, 1], depthwisePhaseFilter(scope.view(filter), filter.shape, rows, cols, rh, rw));
      return scope.run('DepthwiseConv2dNative', { x: cropped.dy, filter: f }, { strides: [1, 1], pad: cropped.pad, dilations: [1, 1] });
    }),
  );
  const strided = info.strideHeight * info.strideWidth > 1;
  return scope.done(strided ? scope.interleavePhases(phases, info.inShape) : scope.slice(phases[0][0], [0, 0, 0, 0], info.inShape));
}

function depthwiseBackpropFilter({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, dilations, pad, dimRoundingMode, true);
  assertSupported(info, 'DepthwiseConv2dNativeBackpropFilter');
  const scope = new WasmScope(backend as WasmBackend);
  const { strideHeight: sH, strideWidth: sW, filterHeight: kH, filterWidth: kW, outHeight, outWidth, inHeight, inWidth, inChannels: c } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = Math.max(0, kH - 1 + sH * (outHeight - 1) + 1 - inHeight - top);
  const right = Math.max(0, kW - 1 + sW * (outWidth - 1) + 1 - inWidth - left);
  const n = x.shape[0];
  const padded = top + bottom + left + right === 0 ? x : scope.run('PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 });
  const simd = depthwiseSimdFor((backend as { wasm: WasmHeap }).wasm);
  if (simd != null) {
    const dW = depthwiseFilterGrad((backend as { wasm: WasmHeap }).wasm, simd, scope.view(padded).byteOffset, scope.view(dy).byteOffset, {
      batch: n, paddedH: padded.shape[1], paddedW: padded.shape[2], channels: c, outH: outHeight, outW: outWidth, kH, kW, strideH: sH, strideW: sW,
    });
    return scope.done(scope.fromValues([kH, kW, c, 1], Float32Array.from(dW)));
  }
  const sums: TensorInfo[] = [];
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const window = scope.stridedWindow(padded, kh, kw, [sH, sW], outHeight, outWidth);
      sums.push(scope.run('Sum', { x: scope.run('Multiply', { a: window, b: dy }) }, { axis: [0, 1, 2], keepDims: false }));
    }
  }
  const dW = new Float32Array(kH * kW * c);
  sums.forEach((s, tap) => dW.set(scope.view(s), tap * c));
  return scope.done(scope.fromValues([kH, kW, c, 1], dW));
}

export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};

export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
