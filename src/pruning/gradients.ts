/**
 * Gradient statistics the importance measures need, over any EngineNet: the loss gradient averaged over batches, and
 * the Hessian-gradient product H·g by double backpropagation where the engine has it, else by central differences.
 */
import type { EngineBatch, EngineNet, LossSpec, WeightSet } from '../training/engine.js';

export interface GradientOptions {
  /**
   * Logit temperature T: the loss is cross-entropy of logits / T. Default 1; each criterion names its own (see
   * Criterion.temperature: flowandprune uses 200 for GraSP's H·g only, 1 for gradient-norm preservation and the rest).
   */
  temperature?: number;
  /** BN in training mode (batch statistics) or inference mode (running statistics). flowandprune scores in eval mode. */
  training?: boolean;
}

export type HessianMethod = 'double-backprop' | 'finite-difference';

function crossEntropy(temperature: number | undefined): LossSpec {
  return { kind: 'cross-entropy', ...(temperature !== undefined && temperature !== 1 ? { temperature } : {}) };
}

export function zerosLike(w: WeightSet): WeightSet {
  return new Map([...w].map(([n, t]) => [n, { shape: [...t.shape], data: new Float32Array(t.data.length) }]));
}

/** acc += scale * x, name by name. */
function axpy(acc: WeightSet, x: WeightSet, scale: number): void {
  for (const [n, t] of x) {
    const a = acc.get(n);
    if (!a) continue;
    for (let i = 0; i < t.data.length; i++) a.data[i] += scale * t.data[i];
  }
}

function norm(w: WeightSet): number {
  let s = 0;
  for (const t of w.values()) for (const v of t.data) s += v * v;
  return Math.sqrt(s);
}

/** Each batch's loss gradient with its share of all samples, for measures that square per batch before averaging. */
export async function batchGradients(net: EngineNet, batches: EngineBatch[], opts: GradientOptions = {}): Promise<{ grads: WeightSet; share: number }[]> {
  if (batches.length === 0) throw new Error('gradients need at least one batch');
  const total = batches.reduce((s, b) => s + b.size, 0);
  const out: { grads: WeightSet; share: number }[] = [];
  for (const b of batches) {
    const { grads } = await net.gradients(b, crossEntropy(opts.temperature), { training: opts.training ?? false });
    out.push({ grads, share: b.size / total });
  }
  return out;
}

/**
 * The loss and the norm of its gradient over the batches (size-weighted means, T = 1, BN on batch statistics: the loss
 * SGD descends; at initialisation the running statistics are not yet estimates): what the gradient-flow view predicts
 * pruning changes, to first order (loss) and second order (gradient norm). Running statistics do not move.
 */
export async function lossAndGradNorm(net: EngineNet, batches: EngineBatch[]): Promise<{ loss: number; gradNorm: number }> {
  if (batches.length === 0) throw new Error('gradients need at least one batch');
  const total = batches.reduce((s, b) => s + b.size, 0);
  let loss = 0;
  let acc: WeightSet | undefined;
  for (const b of batches) {
    const r = await net.gradients(b, crossEntropy(1), { training: true });
    loss += (r.loss * b.size) / total;
    acc ??= zerosLike(r.grads);
    axpy(acc, r.grads, b.size / total);
  }
  return { loss, gradNorm: norm(acc!) };
}

/** The loss gradient averaged over the batches, each weighted by its size (flowandprune's cal_grad). */
export async function meanGradient(net: EngineNet, batches: EngineBatch[], opts: GradientOptions = {}): Promise<WeightSet> {
  if (batches.length === 0) throw new Error('gradients need at least one batch');
  const total = batches.reduce((s, b) => s + b.size, 0);
  let acc: WeightSet | undefined;
  for (const b of batches) {
    const { grads } = await net.gradients(b, crossEntropy(opts.temperature), { training: opts.training ?? false });
    acc ??= zerosLike(grads);
    axpy(acc, grads, b.size / total);
  }
  return acc!;
}

/**
 * Central difference H·v ≈ (g(θ + εv) − g(θ − εv)) / 2ε of a gradient function: exact for quadratic losses, error
 * O(ε²) for smooth ones. ε makes the step ‖εv‖ a fraction `relStep` of ‖θ‖ (or of 1 when θ is tiny). In a ReLU net
 * a step flips the units whose inputs lie within it, and each flip jumps the gradient by O(1): the default 1e-5 keeps
 * such flips rare while float32 rounding of the two gradients stays near 1% of their difference (on the tests'
 * tiny ReLU net 1e-3 and 1e-4 gave uᵀHv and vᵀHu differing by 2x; 1e-5 agreed within 3%). Double backpropagation
 * has neither problem, so engines that offer it are preferred.
 */
export async function finiteDifferenceHv(
  gradAt: (w: WeightSet) => Promise<WeightSet>,
  theta: WeightSet,
  v: WeightSet,
  relStep = 1e-5,
): Promise<WeightSet> {
  const vn = norm(v);
  if (vn === 0) return zerosLike(v);
  const eps = (relStep * Math.max(1, norm(theta))) / vn;
  const shifted = (sign: number): WeightSet => {
    const w = new Map([...theta].map(([n, t]) => [n, { shape: [...t.shape], data: t.data.slice() }]));
    axpy(w, v, sign * eps);
    return w;
  };
  const plus = await gradAt(shifted(1));
  const minus = await gradAt(shifted(-1));
  const out = zerosLike(v);
  axpy(out, plus, 1 / (2 * eps));
  axpy(out, minus, -1 / (2 * eps));
  return out;
}

/**
 * flowandprune's cal_hg: g = the mean gradient over the batches, then H·g averaged over the same batches (each
 * batch's Hessian times the common g). Returns which method computed it.
 */
export async function hessianGradient(
  net: EngineNet,
  batches: EngineBatch[],
  opts: GradientOptions & { relStep?: number } = {},
): Promise<{ g: WeightSet; hg: WeightSet; method: HessianMethod }> {
  const g = await meanGradient(net, batches, opts);
  const loss = crossEntropy(opts.temperature);
  const training = opts.training ?? false;
  const total = batches.reduce((s, b) => s + b.size, 0);
  const hg = zerosLike(g);
  if (net.hessianVector) {
    for (const b of batches) axpy(hg, await net.hessianVector(b, loss, g, { training }), b.size / total);
    return { g, hg, method: 'double-backprop' };
  }
  // Gradients are taken with respect to trainable weights only; the BN running statistics stay as they are.
  const all = await net.readWeights();
  const theta: WeightSet = new Map([...all].filter(([n]) => g.has(n)));
  try {
    const gradAt = async (w: WeightSet): Promise<WeightSet> => {
      await net.writeWeights(w);
      return meanGradient(net, batches, opts);
    };
    const hv = await finiteDifferenceHv(gradAt, theta, g, opts.relStep);
    axpy(hg, hv, 1);
  } finally {
    await net.writeWeights(theta);
  }
  return { g, hg, method: 'finite-difference' };
}
