/** Builds a tf.LayersModel from a NetSpec at a width configuration: the same graph that the complexity count walks. */
import * as tf from '@tensorflow/tfjs';
import { resolveNet } from '../nets/resolve.js';
import type { NetNode, NetSpec, WidthConfig } from '../nets/types.js';
import { deriveSeed } from '../util/rng.js';
import { fusedBatchNormalization } from './backends/batch-norm.js';

/** BatchNorm as PyTorch's defaults (running average momentum 0.1, eps 1e-5), not Keras's 0.99 / 1e-3. */
const BN_MOMENTUM = 0.9;
const BN_EPSILON = 1e-5;

type SymbolicTensor = tf.SymbolicTensor;

/**
 * The parameter-free shortcut as a frozen 1x1 strided convolution whose kernel is a 0/1 matrix: it subsamples by the
 * stride and copies input channel i to output channel i, zero-padding or dropping the rest. A stock Conv2D keeps
 * saved models loadable by plain tfjs; trainable=false keeps it out of the parameter count and the optimizer.
 */
function shortcutKernel(cin: number, cout: number): tf.Tensor4D {
  const k = new Float32Array(cin * cout);
  for (let i = 0; i < Math.min(cin, cout); i++) k[i * cout + i] = 1;
  return tf.tensor4d(k, [1, 1, cin, cout]);
}

function layerFor(node: NetNode, widths: WidthConfig, seed: number, inChannels: number): tf.layers.Layer {
  const name = node.id;
  const layerSeed = deriveSeed(seed, node.id);
  switch (node.op) {
    case 'conv':
      return tf.layers.conv2d({
        name,
        filters: widths[node.out],
        kernelSize: node.kernel,
        strides: node.stride,
        padding: node.pad,
        useBias: node.bias,
        kernelInitializer: tf.initializers.heNormal({ seed: layerSeed }),
      });
    case 'depthwise':
      return tf.layers.depthwiseConv2d({
        name,
        kernelSize: node.kernel,
        strides: node.stride,
        padding: node.pad,
        depthMultiplier: 1,
        useBias: node.bias,
        // tfjs counts a depthwise kernel's fan-in as k*k*channels; each output sees only k*k inputs, so scale up
        // by the channel count to get He's variance 2/(k*k).
        depthwiseInitializer: tf.initializers.varianceScaling({
          scale: 2 * inChannels,
          mode: 'fanIn',
          distribution: 'normal',
          seed: layerSeed,
        }),
      });
    case 'bn':
      // A stock BatchNormalization layer whose training step runs as one fused kernel where registered.
      return fusedBatchNormalization({ name, axis: -1, momentum: BN_MOMENTUM, epsilon: BN_EPSILON });
    case 'relu':
      return tf.layers.reLU({ name, ...(node.max !== undefined ? { maxValue: node.max } : {}) });
    case 'add':
      return tf.layers.add({ name });
    case 'shortcut':
      return tf.layers.conv2d({
        name,
        filters: widths[node.out],
        kernelSize: 1,
        strides: node.stride,
        padding: 'same',
        useBias: false,
        trainable: false,
        kernelInitializer: 'zeros',
      });
    case 'maxpool':
      return tf.layers.maxPooling2d({ name, poolSize: node.size, strides: node.stride, padding: node.pad });
    case 'gap':
      return tf.layers.globalAveragePooling2d({ name });
    case 'flatten':
      return tf.layers.flatten({ name });
    case 'dropout':
      // Unseeded here: a fixed seed would draw the same mask at every step; the tfjs engine re-seeds it before each
      // training pass from the net's seed (engines/tfjs.ts).
      return tf.layers.dropout({ name, rate: node.rate });
    case 'linear':
      // PyTorch's default for linear layers: uniform with variance 1/(3 fan_in).
      return tf.layers.dense({
        name,
        units: node.units,
        useBias: node.bias,
        kernelInitializer: tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed: layerSeed }),
      });
    case 'input':
      throw new Error('input is not a layer');
  }
}

/** A functional tf.LayersModel for the subnetwork; one seed fixes every layer's initialisation. */
export function buildModel(spec: NetSpec, widths: WidthConfig, seed: number): tf.LayersModel {
  const resolved = resolveNet(spec, widths);
  const outputs = new Map<string, SymbolicTensor>();
  const shortcuts: { layer: tf.layers.Layer; cin: number; cout: number }[] = [];
  let input: SymbolicTensor | undefined;
  for (const { node, inputs, output } of resolved) {
    if (node.op === 'input') {
      input = tf.input({ shape: [...spec.ref.input], name: 'input' });
      outputs.set(node.id, input);
      continue;
    }
    const args = (node.op === 'add' ? node.inputs : [node.input]).map((id) => outputs.get(id)!);
    const layer = layerFor(node, widths, seed, inputs[0][2]);
    let x: SymbolicTensor | SymbolicTensor[] = node.op === 'add' ? args : args[0];
    // The count treats a linear layer on a feature map as one on its flattened values.
    if (node.op === 'linear' && args[0].shape.length > 2) x = tf.layers.flatten({ name: `${node.id}.flatten` }).apply(args[0]) as SymbolicTensor;
    outputs.set(node.id, layer.apply(x) as SymbolicTensor);
    if (node.op === 'shortcut') shortcuts.push({ layer, cin: inputs[0][2], cout: output[2] });
  }
  const model = tf.model({ inputs: input!, outputs: outputs.get(spec.output)!, name: spec.ref.family });
  for (const { layer, cin, cout } of shortcuts) {
    const kernel = shortcutKernel(cin, cout);
    layer.setWeights([kernel]);
    kernel.dispose();
  }
  return model;
}

/** Trainable parameters of a model (BN scale and shift, biases included; running statistics and shortcuts not). */
export function trainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/** Variables that get L2 weight decay: conv and linear kernels, not BN parameters or biases. */
export function decayedWeights(model: tf.LayersModel): Set<string> {
  return new Set(
    model.trainableWeights.filter((w) => /\/(kernel|depthwise_kernel)$/.test(w.originalName)).map((w) => (w.read() as tf.Variable).name),
  );
}
