/**
 * Conv2DBackpropInput on wasm: the input gradient as XNNPACK forward convs over dy (sub-pixel form), replacing
 * the stock scalar loop (~10x slower). Stride 1: one conv with the flipped, channel-swapped filter. Strided:
 * one conv per stride phase with exactly its taps, interleaved on the heap.
 */
import * as tf from '@tensorflow/tfjs';
import { planAxis, planPhases, type AxisPlan, type PhasePlan } from './transposed-conv-plan.js';
import { WasmScope, explicitPad, type TensorInfo, type WasmBackend } from './wasm-ops.js';

/**
 * Rearranges a forward filter [KH, KW, inC, outC] into the phase filter [LH, LW, outC, sH*sW*inC]: spatially
 * flipped taps per phase, channels swapped, phases ordered (rh, rw, inC) as assemblePhases (depth-to-space) reads.
 */
export function phaseFilter(w: Float32Array, shape: number[], rows: AxisPlan, cols: AxisPlan): Float32Array {
  const [, kw, inC, outC] = shape;
  const sH = rows.taps.length;
  const sW = cols.taps.length;
  const outChannels = sH * sW * inC;
  const f = new Float32Array(rows.length * cols.length * outC * outChannels);
  for (let rh = 0; rh < sH; rh++) {
    for (let rw = 0; rw < sW; rw++) {
      const phase = (rh * sW + rw) * inC;
      for (let jh = 0; jh < rows.length; jh++) {
        const kh = rows.taps[rh][jh];
        if (kh < 0) continue;
        for (let jw = 0; jw < cols.length; jw++) {
          const k = cols.taps[rw][jw];
          if (k < 0) continue;
          const src = (kh * kw + k) * inC * outC;
          const dst = (jh * cols.length + jw) * outC * outChannels + phase;
          for (let ci = 0; ci < inC; ci++) {
            for (let co = 0; co < outC; co++) f[dst + co * outChannels + ci] = w[src + ci * outC + co];
          }
        }
      }
    }
  }
  return f;
}

/** Crops dy where the plan asks for negative padding, and returns the non-negative pads that remain. */
export function cropForPlan(scope: WasmScope, dy: TensorInfo, rows: Pick<AxisPlan, 'padBefore' | 'padAfter'>, cols: Pick<AxisPlan, 'padBefore' | 'padAfter'>): { dy: TensorInfo; pad: tf.backend_util.ExplicitPadding } {
  const [n, h, w, c] = dy.shape;
  const top = Math.max(0, -rows.padBefore);
  const bottom = Math.max(0, -rows.padAfter);
  const left = Math.max(0, -cols.padBefore);
  const right = Math.max(0, -cols.padAfter);
  const cropped = scope.slice(dy, [0, top, left, 0], [n, h - top - bottom, w - left - right, c]);
  const pad = explicitPad(Math.max(0, rows.padBefore), Math.max(0, rows.padAfter), Math.max(0, cols.padBefore), Math.max(0, cols.padAfter));
  return { dy: cropped, pad };
}

/**
 * Interleaves phase channels into space (when strided) and crops to the forward input's size. The
 * interleave is a reshape-transpose-reshape ([N*PH, PW, sH, sW*C] -> [N*PH, sH, PW, sW*C]); wasm's
 * DepthToSpace kernel does the same but is ~20x slower. (Used by the 'shared' strided mode.)
 */
export function assemblePhases(scope: WasmScope, phases: TensorInfo, strides: [number, number], inShape: number[]): TensorInfo {
  const [sH, sW] = strides;
  let full = phases;
  if (sH !== 1 || sW !== 1) {
    const [n, ph, pw, channels] = phases.shape;
    const c = channels / (sH * sW);
    const split = scope.reshape(phases, [n * ph, pw, sH, sW * c]);
    full = scope.reshape(scope.transpose(split, [0, 2, 1, 3]), [n, ph * sH, pw * sW, c]);
  }
  return scope.slice(full, [0, 0, 0, 0], inShape);
}

/** The filter [MH, MW, outC, inC] of one stride phase: its flipped taps, channels swapped. */
function exactPhaseFilter(w: Float32Array, shape: number[], rows: PhasePlan, cols: PhasePlan): Float32Array {
  const [, kw, inC, outC] = shape;
  const f = new Float32Array(rows.taps.length * cols.taps.length * outC * inC);
  rows.taps.forEach((kh, jh) =>
    cols.taps.forEach((k, jw) => {
      const src = (kh * kw + k) * inC * outC;
      const dst = (jh * cols.taps.length + jw) * outC * inC;
      for (let ci = 0; ci < inC; ci++) for (let co = 0; co < outC; co++) f[dst + co * inC + ci] = w[src + ci * outC + co];
    }),
  );
  return f;
}

/**
 * Strided: one conv per stride phase with exactly that phase's taps (together the forward conv's multiply
 * count, where one shared phase filter would do (ceil(K/s)*s/K)^2 times as many), interleaved on the heap.
 */
function stridedInputGrad(scope: WasmScope, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const rows = planPhases(info.filterHeight, info.strideHeight, info.padInfo.top, info.inHeight, info.outHeight);
  const cols = planPhases(info.filterWidth, info.strideWidth, info.padInfo.left, info.inWidth, info.outWidth);
  const phases = rows.map((r) =>
    cols.map((c) => {
      if (r.taps.length === 0 || c.taps.length === 0) return null;
      const f = scope.fromValues([r.taps.length, c.taps.length, info.outChannels, info.inChannels], exactPhaseFilter(scope.view(filter), filter.shape, r, c));
      const cropped = cropForPlan(scope, dy, r, c);
      return scope.run('Conv2D', { x: cropped.dy, filter: f }, { strides: [1, 1], pad: cropped.pad, dataFormat: 'NHWC', dilations: [1, 1] });
    }),
  );
  return scope.interleavePhases(phases, info.inShape);
}

function conv2DBackpropInput({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropInput supports NHWC only');
  const scope = new WasmScope(backend as WasmBackend);
  if (strideMode === 'phases' && (info.strideHeight > 1 || info.strideWidth > 1)) return scope.done(stridedInputGrad(scope, dy, filter, info));
  const rows = planAxis(info.filterHeight, info.strideHeight, info.padInfo.top, info.inHeight, info.outHeight);
  const cols = planAxis(info.filterWidth, info.strideWidth, info.padInfo.left, info.inWidth, info.outWidth);
  const f = scope.fromValues(
    [rows.length, cols.length, info.outChannels, info.strideHeight * info.strideWidth * info.inChannels],
    phaseFilter(scope.view(filter), filter.shape, rows, cols),
  );
  const cropped = cropForPlan(scope, dy, rows, cols);
  const phases = scope.run('Conv2D', { x: cropped.dy, filter: f }, { strides: [1, 1], pad: cropped.pad, dataFormat: 'NHWC', dilations: [1, 1] });
  return scope.done(assemblePhases(scope, phases, [info.strideHeight, info.strideWidth], info.inShape));
}

/** How strided input gradients run: 'phases' (a conv per phase) or 'shared' (one conv, shared phase filter). */
let strideMode: 'phases' | 'shared' = 'phases';
export function setStridedInputGradMode(mode: 'phases' | 'shared'): void {
  strideMode = mode;
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
