/**
 * Identity on wasm without a copy: share the data and count a reference, as the cpu backend does (tensor
 * data is immutable, and the wasm backend already reference-counts reshapes). The stock wasm Identity copies
 * every tensor; tfjs-layers and the optimizers call it hundreds of times per training step.
 */
import * as tf from '@tensorflow/tfjs';

interface RefCounting {
  incRef(dataId: unknown): void;
}

export function makeSharedIdentityConfig(stock: tf.KernelConfig | undefined): tf.KernelConfig {
  return {
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' && stock != null) return stock.kernelFunc(args);
      (args.backend as unknown as RefCounting).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
}
