/**
 * Fast training-mode batch normalization: one kernel forward (y, batch mean, batch variance) and one kernel
 * backward (dx, dScale, dOffset), registered on 'wasm' and 'cpu'; other backends use the tfjs composition.
 *
 * Saved models stay standard: `withFusedBatchNorm` only swaps the training-time `call` of a stock
 * tf.layers.batchNormalization instance, so model.json still says "BatchNormalization" and the weights
 * (gamma, beta, moving_mean, moving_variance) are the stock layer's.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormBackward, batchNormForward } from './batch-norm-math.js';
import { batchNormTrainGradSimd, batchNormTrainSimd } from './batch-norm-wasm.js';

export const BatchNormTrain = 'PrunespaceBatchNormTrain';
export const BatchNormTrainGrad = 'PrunespaceBatchNormTrainGrad';

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

/** Reads and allocates float32 data on one backend. */
interface FloatStore {
  read(info: tf.TensorInfo): Float32Array;
  /** Allocates outputs; views must be (re)taken after all allocations (the wasm heap may grow). */
  alloc(shape: number[]): tf.TensorInfo;
}

function wasmStore(backend: unknown): FloatStore {
  const b = backend as { makeOutput(shape: number[], dtype: string): tf.TensorInfo; typedArrayFromHeap(i: tf.TensorInfo): Float32Array };
  return { read: (i) => b.typedArrayFromHeap(i), alloc: (shape) => b.makeOutput(shape, 'float32') };
}

function cpuStore(backend: unknown): FloatStore {
  const b = backend as { data: { get(id: unknown): { values: Float32Array } }; makeTensorInfo(shape: number[], dtype: string, values?: Float32Array): tf.TensorInfo };
  return {
    read: (i) => b.data.get(i.dataId).values,
    alloc: (shape) => b.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((p, s) => p * s, 1))),
  };
}

function forwardKernel(store: (backend: unknown) => FloatStore) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] => {
    const { x, scale, offset } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
    const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const s = store(backend);
    const channels = x.shape[x.shape.length - 1];
    const y = s.alloc(x.shape);
    const mean = s.alloc([channels]);
    const variance = s.alloc([channels]);
    batchNormForward(s.read(x), channels, s.read(scale), s.read(offset), epsilon, s.read(y), { mean: s.read(mean), variance: s.read(variance) });
    return [y, mean, variance];
  };
}

function backwardKernel(store: (backend: unknown) => FloatStore) {
  return ({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] => {
    const { dy, x, scale, mean, variance } = inputs as Record<'dy' | 'x' | 'scale' | 'mean' | 'variance', tf.TensorInfo>;
    const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const s = store(backend);
    const channels = x.shape[x.shape.length - 1];
    const dx = s.alloc(x.shape);
    const dScale = s.alloc([channels]);
    const dOffset = s.alloc([channels]);
    batchNormBackward(s.read(dy), s.read(x), channels, s.read(scale), { mean: s.read(mean), variance: s.read(variance) }, epsilon, s.read(dx), s.read(dScale), s.read(dOffset));
    return [dx, dScale, dOffset];
  };
}

type Kernel = (args: KernelArgs) => tf.TensorInfo[];

/** The SIMD kernel where the engine supports it, else the JS loops. */
function preferSimd(simd: (args: KernelArgs) => tf.TensorInfo[] | null, js: Kernel): Kernel {
  return (args) => simd(args) ?? js(args);
}

export const batchNormKernelConfigs: tf.KernelConfig[] = [
  { kernelName: BatchNormTrain, backendName: 'wasm', kernelFunc: preferSimd(batchNormTrainSimd, forwardKernel(wasmStore)) as unknown as tf.KernelFunc },
  { kernelName: BatchNormTrainGrad, backendName: 'wasm', kernelFunc: preferSimd(batchNormTrainGradSimd, backwardKernel(wasmStore)) as unknown as tf.KernelFunc },
  { kernelName: BatchNormTrain, backendName: 'cpu', kernelFunc: forwardKernel(cpuStore) as unknown as tf.KernelFunc },
  { kernelName: BatchNormTrainGrad, backendName: 'cpu', kernelFunc: backwardKernel(cpuStore) as unknown as tf.KernelFunc },
];

/**
 * Gradient of BatchNormTrain for its normalized output. The mean and variance outputs are treated as
 * statistics (moving averages read them, nothing differentiates through them), so their dys are ignored.
 */
const batchNormTrainGradConfig: tf.GradConfig = {
  kernelName: BatchNormTrain,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [x, scale, mean, variance] = saved;
    const [dx, dScale, dOffset] = tf.engine().runKernel(BatchNormTrainGrad, { dy, x, scale, mean, variance }, attrs as tf.NamedAttrMap) as tf.Tensor[];
    return { x: () => dx, scale: () => dScale, offset: () => dOffset };
  },
};

let registered = false;

/** Registers the fused kernels on wasm and cpu and their gradient; idempotent. */
export function registerBatchNormKernels(): void {
  if (registered) return;
  for (const config of batchNormKernelConfigs) {
    if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
  }
  tf.registerGradient(batchNormTrainGradConfig);
  registered = true;
}

export interface BatchNormTrainingResult {
  y: tf.Tensor;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch norm over every axis but the last, differentiable w.r.t. x, gamma and beta:
 * the same values and gradients as tfjs-layers' moments + batchNormalization, in two kernels.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormTrainingResult {
  registerBatchNormKernels();
  if (tf.getKernel(BatchNormTrain, tf.getBackend()) == null) {
    return tf.tidy(() => {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      return { y: tf.batchNorm(x, mean, variance, beta, gamma, epsilon), mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  const [y, mean, variance] = tf.engine().runKernel(BatchNormTrain, { x, scale: gamma, offset: beta }, { varianceEpsilon: epsilon }) as tf.Tensor[];
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/** The private fields of tfjs-layers' BatchNormalization that the fused call needs. */
interface BatchNormLayerFields {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/**
 * Makes a stock BatchNormalization layer train with `batchNormTraining` (channels-last, with scale and
 * center); inference and other configurations keep the stock path. Moving statistics are updated exactly
 * as tfjs-layers does (v -= (v - batch) * (1 - momentum)). Returns the same layer.
 */
export function withFusedBatchNorm<L extends tf.layers.Layer>(layer: L): L {
  const bn = layer as unknown as BatchNormLayerFields;
  const stockCall = bn.call.bind(layer);
  bn.call = (inputs, kwargs) => {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = bn.axis === -1 || bn.axis === x.rank - 1;
    if (kwargs?.['training'] !== true || !lastAxis || !bn.center || !bn.scale) return stockCall(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, bn.gamma.read() as tf.Tensor1D, bn.beta.read() as tf.Tensor1D, bn.epsilon);
      const decay = 1 - bn.momentum;
      for (const [variable, batch] of [[bn.movingMean, mean], [bn.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const current = variable.read();
          variable.write(tf.sub(current, tf.mul(tf.sub(current, batch), decay)));
        });
      }
      return y;
    });
  };
  return layer;
}

/** tf.layers.batchNormalization with the fused training step (see withFusedBatchNorm). */
export function fusedBatchNormalization(args?: Parameters<typeof tf.layers.batchNormalization>[0]): tf.layers.Layer {
  return withFusedBatchNorm(tf.layers.batchNormalization(args));
}
