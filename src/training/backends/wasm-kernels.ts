/** Registers the kernels that make the wasm backend able to train convnets (see kernels/ for each). */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterConfig } from './kernels/conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './kernels/conv2d-backprop-input.js';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './kernels/depthwise-backprop.js';
import { batchNormKernelConfigs, registerBatchNormKernels } from './batch-norm.js';
import { makeSharedIdentityConfig } from './kernels/identity.js';
import { registerActivationGradients } from './kernels/activation-grad.js';

/** Our wasm kernels: the three convolution gradients tfjs-backend-wasm 4.22 lacks, a faster Conv2DBackpropInput, fused batch norm (plus a zero-copy Identity, registered below). */
export const wasmTrainingKernels: tf.KernelConfig[] = [
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  depthwiseBackpropFilterConfig,
  ...batchNormKernelConfigs.filter((k) => k.backendName === 'wasm'),
];

let sharedIdentity: tf.KernelConfig | undefined;

/** Registers (or re-registers) our kernels on 'wasm', replacing stock ones silently; idempotent. */
export function registerWasmTrainingKernels(): void {
  sharedIdentity ??= makeSharedIdentityConfig(tf.getKernel(tf.Identity, 'wasm'));
  for (const config of [...wasmTrainingKernels, sharedIdentity]) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current === config) continue;
    if (current != null) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registerBatchNormKernels();
  registerActivationGradients();
}
