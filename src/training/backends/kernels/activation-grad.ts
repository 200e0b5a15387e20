/**
 * One-pass gradients for ReLU, ReLU6 and clipByValue on wasm (kernel MaskGrad, SIMD). The gradient configs
 * are global in tfjs, so ours use the kernel where the active backend has it (wasm) and otherwise call the
 * stock gradient they replace.
 */
import * as tf from '@tensorflow/tfjs';
import { maskGrad, maskGradSimdFor } from '../simd/mask-grad.js';
import type { WasmHeap } from '../simd/channel-kernels.js';

export const MaskGrad = 'PrunespaceMaskGrad';

interface MaskAttrs {
  lo: number;
  hi: number;
  loInclusive: boolean;
}

interface WasmBackendLike {
  wasm: WasmHeap;
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

export const maskGradConfig: tf.KernelConfig = {
  kernelName: MaskGrad,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    const { lo, hi, loInclusive } = attrs as unknown as MaskAttrs;
    const b = backend as unknown as WasmBackendLike;
    const simd = maskGradSimdFor(b.wasm);
    if (simd == null) throw new Error('MaskGrad needs WebAssembly SIMD');
    const out = b.makeOutput(dy.shape, 'float32');
    const length = dy.shape.reduce((p, s) => p * s, 1);
    maskGrad(b.wasm, simd, b.typedArrayFromHeap(dy).byteOffset, b.typedArrayFromHeap(x).byteOffset, b.typedArrayFromHeap(out).byteOffset, length, lo, hi, loInclusive);
    return out;
  },
};

/** Whether the active backend can run MaskGrad for these tensors. */
function usable(dy: tf.Tensor, x: tf.Tensor): boolean {
  if (dy.dtype !== 'float32' || x.dtype !== 'float32' || tf.getKernel(MaskGrad, tf.getBackend()) == null) return false;
  return maskGradSimdFor((tf.backend() as unknown as WasmBackendLike).wasm) != null;
}

function maskedGradient(kernelName: string, bounds: (attrs: tf.NamedAttrMap) => MaskAttrs): tf.GradConfig | null {
  const stock = tf.getGradient(kernelName);
  if (stock == null) return null;
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const g = dy as tf.Tensor;
      if (!usable(g, x)) return stock.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(MaskGrad, { dy: g, x }, bounds(attrs) as unknown as tf.NamedAttrMap) as tf.Tensor };
    },
  };
}

let registered = false;

/** Registers the kernel and the three gradients (same values as tfjs's: step(x) is 0 at 0, clip bounds inclusive). */
export function registerActivationGradients(): void {
  if (registered) return;
  if (tf.getKernel(MaskGrad, 'wasm') == null) tf.registerKernel(maskGradConfig);
  const configs = [
    maskedGradient(tf.Relu, () => ({ lo: 0, hi: Infinity, loInclusive: false })),
    maskedGradient(tf.Relu6, () => ({ lo: 0, hi: 6, loInclusive: false })),
    maskedGradient(tf.ClipByValue, (a) => ({ lo: a.clipValueMin as number, hi: a.clipValueMax as number, loInclusive: true })),
  ];
  for (const c of configs) if (c != null) tf.registerGradient(c);
  registered = true;
}
