/**
 * The engine contract. An engine (tfjs: wasm, cpu, native TensorFlow; torch: the libtorch addon) trains and evaluates
 * a network described by src/nets. The training loop, importance measures, weight inheritance and distillation are
 * written once in TypeScript over this interface; nothing above src/training names a particular engine.
 *
 * Weights cross the boundary in tfjs layout and under tfjs weight names, so a model trained on any engine is saved
 * as the same stock tfjs LayersModel, and a tfjs parent loads into any engine:
 *   conv kernel  '<node>/kernel'            [kh, kw, cin, cout]
 *   depthwise    '<node>/depthwise_kernel'  [kh, kw, c, 1]
 *   linear       '<node>/kernel'            [in, out]   (in is flattened NHWC order: h, w, c)
 *   biases       '<node>/bias'              [c]
 *   batch norm   '<node>/gamma', '<node>/beta', '<node>/moving_mean', '<node>/moving_variance'   [c]
 * The frozen zero-pad shortcut has no weights here: every engine builds it from the widths.
 */
import type { NetSpec, WidthConfig } from '../nets/types.js';

/** Images NHWC (normalised) and labels. Label-free methods pass no labels; an engine must not need them there. */
export interface EngineBatch {
  x: Float32Array;
  labels?: Int32Array;
  size: number;
}

/** One tensor in tfjs layout (row-major over `shape`). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** Tensors by tfjs weight name. Reading gives every trainable weight and the BN running statistics. */
export type WeightSet = Map<string, WeightTensor>;

export interface OptimizerSettings {
  momentum: number;
  nesterov: boolean;
  /** Coupled L2 (PyTorch SGD's weight_decay) on conv, depthwise and linear kernels only. */
  weightDecay: number;
}

/** What a forward pass exposes to a loss written in TypeScript. */
export interface ForwardOutputs {
  /** [batch, classes], row-major. */
  logits: Float32Array;
  /** Outputs of the requested nodes (NHWC, or [batch, units]), by node id. */
  taps: Map<string, Float32Array>;
}

/** A loss computed in TypeScript from a forward pass: its value and its gradient with respect to each output used. */
export type OutputLoss = (out: ForwardOutputs) => {
  loss: number;
  dLogits?: Float32Array;
  dTaps?: Map<string, Float32Array>;
};

/**
 * The loss whose parameter gradients are asked for: the engine's own softmax cross-entropy on the batch's labels
 * (optionally with label smoothing and a logit temperature), or a loss given in TypeScript over the outputs.
 */
export type LossSpec =
  | { kind: 'cross-entropy'; labelSmoothing?: number; temperature?: number }
  | { kind: 'outputs'; taps?: string[]; fn: OutputLoss };

export interface StepStats {
  /** Mean loss over the batch. */
  loss: number;
  /** Misclassified images in the batch. */
  wrong: number;
}

/** One subnetwork living in an engine. Every method may be called at any time; none keeps a reference to its inputs. */
export interface EngineNet {
  readonly spec: NetSpec;
  readonly widths: WidthConfig;
  /**
   * One supervised SGD step: softmax cross-entropy with label smoothing, coupled L2 decay, momentum (or Nesterov) at
   * learning rate lr, BN in training mode (running statistics updated with momentum 0.1, eps 1e-5).
   */
  trainStep(batch: EngineBatch, lr: number, labelSmoothing: number): Promise<StepStats>;
  /** Inference mode, no smoothing: the batch's summed cross-entropy and misclassified count. */
  evaluate(batch: EngineBatch): Promise<{ lossSum: number; wrong: number }>;
  /** Forward pass (BN in training or inference mode; running statistics never change here). */
  forward(batch: EngineBatch, opts: { training: boolean; taps?: string[] }): Promise<ForwardOutputs>;
  /**
   * Gradients of the loss with respect to every trainable weight (tfjs names and layout). Weights, running statistics
   * and optimizer state do not change. BN runs in training mode unless told otherwise.
   */
  gradients(batch: EngineBatch, loss: LossSpec, opts?: { training?: boolean }): Promise<{ loss: number; grads: WeightSet }>;
  /**
   * Hessian-vector product H·v of the loss by double backpropagation. Absent where the engine cannot differentiate
   * twice; callers then use a central finite difference of `gradients` and say so.
   */
  hessianVector?(batch: EngineBatch, loss: LossSpec, v: WeightSet, opts?: { training?: boolean }): Promise<WeightSet>;
  /** One optimizer step with the given gradients (decay added as in trainStep): custom objectives train through this. */
  applyGradients(grads: WeightSet, lr: number): Promise<void>;
  readWeights(): Promise<WeightSet>;
  /** Overwrites the named tensors (a subset is fine); shapes must match, else it throws naming the weight. */
  writeWeights(weights: WeightSet): Promise<void>;
  /**
   * The SGD momentum buffers by trainable weight name (tfjs layout), so a checkpoint continues training exactly;
   * empty before the first step (or with momentum 0).
   */
  readOptimizerState(): Promise<WeightSet>;
  /** Replaces the momentum buffers with ones read by readOptimizerState (an empty set: as before the first step). */
  writeOptimizerState(state: WeightSet): Promise<void>;
  /**
   * How activations are laid out where the engine has a choice (torch: 'nchw', 'channels-last',
   * 'channels-last-padded'): provenance for results, since rounding differs between layouts.
   */
  memoryFormat?(): string;
  dispose(): void;
}

export interface Engine {
  /** 'torch', 'wasm', 'cpu' or 'tensorflow'. */
  readonly name: string;
  /** Where it computes: 'cpu', 'cuda:0', ... */
  readonly device: string;
  /** Builds the subnetwork at `widths` with the seeded initialisation every engine shares. */
  build(spec: NetSpec, widths: WidthConfig, seed: number, optimizer: OptimizerSettings): Promise<EngineNet>;
}
