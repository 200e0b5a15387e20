/**
 * The torch engine against tfjs step by step, at the same weights: along a trajectory the tfjs engine trains, each
 * step's gradients and ReLU inputs are recomputed by the torch engine from tfjs's weights and compared.
 *
 * Why not compare two independently trained trajectories: training amplifies float32 rounding. On the one-channel
 * resnet20 of these tests, torch started from weights one float32 ulp away from its own diverges from itself by
 * 2.5e-3 to 7.8e-3 relative in loss within 20 steps (`npm run bench -- isa-gradients`), so a 20-step loss tolerance
 * passes or fails with the CPU's rounding, not with the engine's correctness.
 *
 * Why steps are excused: a ReLU input within rounding of zero (measured: 9.0e-7 in float64, -1.6e-6 in float32 at the
 * first step of that net) sends its gradient through in one engine and not in the other, which moved one weight
 * gradient tensor by 19% in PyTorch itself between float32 and float64. A step whose ReLU masks differ between the
 * engines has no single right gradient at float32 precision; it is counted and bounded, never compared.
 *
 * The tolerance, derived from float32 rounding: a weight gradient is a sum over batch x output positions; a sum of n
 * float32 terms carries a relative error of order sqrt(n) u (u = 2^-24, rounding errors of random sign), compounded
 * over the layers it passed through. TOL = 32 sqrt(n) u with n the longest such sum in the net (n = 1600 for a
 * 16-image batch at 10x10: TOL = 7.6e-5). Measured against PyTorch float64 on this net, tfjs, torch and PyTorch
 * float32 sit at 1e-6 to 4e-6 at every ISA level, except tensors whose sum cancels (a BN scale at initialisation),
 * for which the allowance is tfjs's own sensitivity to one rounding of every weight, 16 times over.
 */
import { readFileSync } from 'node:fs';
import { NetBuilder } from '../src/nets/builder.js';
import { buildNet, completeRef } from '../src/nets/registry.js';
import { keepWidths, resolveNet } from '../src/nets/resolve.js';
import type { NetSpec, WidthConfig } from '../src/nets/types.js';
import type { Engine, EngineBatch, OptimizerSettings, WeightSet } from '../src/training/engine.js';
import { makeRng } from '../src/util/rng.js';

const U = 2 ** -24;

export function batchOf(spec: NetSpec, size: number, seed: number): EngineBatch {
  const rng = makeRng(seed, 'batch');
  const [h, w, c] = spec.ref.input;
  return {
    x: Float32Array.from({ length: size * h * w * c }, () => rng() * 2 - 1),
    labels: Int32Array.from({ length: size }, () => Math.floor(rng() * spec.ref.classes)),
    size,
  };
}

/**
 * A loss written in TypeScript over one feature-map tap and the logits: 0.5 |tap|^2 plus a linear term on the logits
 * (weight i mod classes), with its own seeds, so an engine's gradients through taps and logits can be compared.
 */
export function tapLoss(tap: string, classes: number) {
  return {
    kind: 'outputs' as const,
    taps: [tap],
    fn: (o: { logits: Float32Array; taps: Map<string, Float32Array> }) => {
      const t = o.taps.get(tap)!;
      return {
        loss: t.reduce((s, v) => s + 0.5 * v * v, 0) + o.logits.reduce((s, v, i) => s + v * (i % classes), 0),
        dTaps: new Map([[tap, t.slice()]]),
        dLogits: o.logits.map((_, i) => i % classes),
      };
    },
  };
}

/** oneDNN's ISA caps this CPU supports (ONEDNN_MAX_CPU_ISA names), lowest first. */
export function isaLevels(): string[] {
  const flags = new Set(readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? []);
  const levels: [string, boolean][] = [
    ['SSE41', flags.has('sse4_1')],
    ['AVX', flags.has('avx')],
    ['AVX2', flags.has('avx2')],
    ['AVX512_CORE', ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))],
  ];
  return levels.filter(([, ok]) => ok).map(([name]) => name);
}

/** max |a - b| / max |a| over one pair of arrays. */
export function relMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 1e-30;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(a[i]));
  }
  return d / s;
}

/** 32 sqrt(n) u, n the most terms any weight gradient of the net sums (batch x output positions of a layer). */
export function gradientTolerance(spec: NetSpec, widths: WidthConfig, batch: number): number {
  let n = batch;
  for (const { node, output } of resolveNet(spec, widths)) {
    if (node.op === 'conv' || node.op === 'depthwise') n = Math.max(n, batch * output[0] * output[1]);
  }
  return 32 * Math.sqrt(n) * U;
}

/** Every ReLU's input node and its clip (relu6), where the derivative has its kinks. */
export function reluInputs(spec: NetSpec, widths: WidthConfig): { id: string; max?: number }[] {
  return resolveNet(spec, widths)
    .map(({ node }) => node)
    .filter((n) => n.op === 'relu')
    .map((n) => ({ id: (n as { input: string }).input, max: (n as { max?: number }).max }));
}

export interface TrajectoryStep {
  weights: WeightSet;
  batch: EngineBatch;
  loss: number;
  grads: WeightSet;
  /** Pre-activations of every ReLU, by the id of the node feeding it. */
  pre: Map<string, Float32Array>;
  /** Per gradient tensor: how far tfjs's own gradient moves when every weight moves by one float32 rounding. */
  sensitivity: Map<string, number>;
}

export interface Trajectory {
  name: string;
  spec: NetSpec;
  widths: WidthConfig;
  opt: OptimizerSettings;
  seed: number;
  steps: TrajectoryStep[];
}

const SMOOTHING = 0.1;
const CE = { kind: 'cross-entropy' as const, labelSmoothing: SMOOTHING };

/** Every weight times (1 ± u), signs at random: a perturbation of the size of one float32 rounding. */
function roundingPerturbed(w: WeightSet, seed: number): WeightSet {
  const rng = makeRng(seed, 'rounding');
  return new Map([...w].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((v) => v * (1 + (rng() < 0.5 ? -U : U))) }]));
}

/** tfjs trains `steps` SGD steps at lr 0.01 on 16-image batches; each step's start is recorded. */
export async function tfjsTrajectory(tfjs: Engine, name: string, spec: NetSpec, widths: WidthConfig, opt: OptimizerSettings, steps = 10): Promise<Trajectory> {
  const seed = 9;
  const net = await tfjs.build(spec, widths, seed, opt);
  const taps = reluInputs(spec, widths).map((r) => r.id);
  const out: TrajectoryStep[] = [];
  for (let s = 0; s < steps; s++) {
    const batch = batchOf(spec, 16, 100 + s);
    const weights = await net.readWeights();
    const f = await net.forward(batch, { training: true, taps });
    const g = await net.gradients(batch, CE);
    await net.writeWeights(roundingPerturbed(weights, s));
    const gp = await net.gradients(batch, CE);
    await net.writeWeights(weights);
    const sensitivity = new Map([...g.grads].map(([name, t]) => [name, relMax(t.data, gp.grads.get(name)!.data)]));
    out.push({ weights, batch, loss: g.loss, grads: g.grads, pre: f.taps, sensitivity });
    await net.trainStep(batch, 0.01, SMOOTHING);
  }
  net.dispose();
  return { name, spec, widths, opt, seed, steps: out };
}

export interface Agreement {
  name: string;
  steps: number;
  /** Steps whose ReLU masks differed between the engines (not compared). */
  excused: number;
  /** Worst over compared steps: gradient difference over its allowance (fails above 1); relative differences of ReLU inputs, loss, BN running statistics. */
  grad: number;
  running: number;
  pre: number;
  loss: number;
  tolerance: number;
  worstTensor: string;
}

export function masksDiffer(a: Float32Array, b: Float32Array, max: number | undefined): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] > 0 !== b[i] > 0) return true;
    if (max !== undefined && a[i] < max !== b[i] < max) return true;
  }
  return false;
}

/** The torch engine recomputes every step of a tfjs trajectory from tfjs's weights. */
export async function compareWithTorch(torch: Engine, t: Trajectory): Promise<Agreement> {
  const net = await torch.build(t.spec, t.widths, t.seed, t.opt);
  const relus = reluInputs(t.spec, t.widths);
  const r: Agreement = { name: t.name, steps: t.steps.length, excused: 0, grad: 0, running: 0, pre: 0, loss: 0, tolerance: gradientTolerance(t.spec, t.widths, 16), worstTensor: '' };
  for (const [i, step] of t.steps.entries()) {
    await net.writeWeights(step.weights);
    // The running statistics a training step leaves depend on the forward batch statistics only (no ReLU kink).
    const next = t.steps[i + 1]?.weights;
    if (next) {
      await net.trainStep(step.batch, 0.01, SMOOTHING);
      const after = await net.readWeights();
      for (const [name, w] of next) if (/moving_(mean|variance)$/.test(name)) r.running = Math.max(r.running, relMax(w.data, after.get(name)!.data));
      await net.writeWeights(step.weights);
    }
    const f = await net.forward(step.batch, { training: true, taps: relus.map((x) => x.id) });
    for (const { id } of relus) r.pre = Math.max(r.pre, relMax(step.pre.get(id)!, f.taps.get(id)!));
    if (relus.some(({ id, max }) => masksDiffer(step.pre.get(id)!, f.taps.get(id)!, max))) {
      r.excused++;
      continue;
    }
    const g = await net.gradients(step.batch, CE);
    r.loss = Math.max(r.loss, Math.abs(g.loss - step.loss) / Math.abs(step.loss));
    for (const [name, ga] of step.grads) {
      // Where a gradient is a sum that cancels (a BN scale's, at initialisation), float32 fixes it only as well as
      // tfjs's own sensitivity to one rounding says; the allowance is then that sensitivity, 16 times over.
      const allowed = Math.max(r.tolerance, 16 * step.sensitivity.get(name)!);
      const d = relMax(ga.data, g.grads.get(name)!.data) / allowed;
      if (d > r.grad) [r.grad, r.worstTensor] = [d, name];
    }
  }
  net.dispose();
  return r;
}

/**
 * A small depthwise-separable net (MobileNet blocks, strided, relu and relu6). Not all of MobileNetV1: a deep plain
 * BN network without skips has exploding gradients at initialisation, which amplify float rounding differences
 * between any two engines exponentially with depth (measured: 1e-6 to 1e-3 relative within two steps).
 */
export function depthwiseNet(): NetSpec {
  const b = new NetBuilder(completeRef({ family: 'mobilenet-v1-cifar', input: [12, 12, 3], classes: 4 }));
  const stem = b.group('stem', 'stem', 0, 8);
  const g1 = b.group('block1.pw', 'pointwise', 1, 12);
  const g2 = b.group('block2.pw', 'pointwise', 2, 16);
  let x = b.convBn('stem', 'input', stem, 3, 1);
  x = b.depthwiseBn('block1.dw', x, 3, 2, 'relu6');
  x = b.convBn('block1.pw', x, g1, 1, 1, { act: 'relu6' });
  x = b.depthwiseBn('block2.dw', x, 3, 2, 'relu');
  x = b.convBn('block2.pw', x, g2, 1, 1);
  return b.classifier(x);
}

const OPT = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };

/** The nets every ISA level is checked on: the cases the engine once got wrong or that take their own kernels. */
export function equivalenceNets(): { name: string; spec: NetSpec; widths: WidthConfig; opt: OptimizerSettings }[] {
  const residual = buildNet({ family: 'resnet20', input: [10, 10, 3], classes: 4 });
  // Pruned stages: stage 2 narrower than stage 1 exercises channel dropping, stage 3 wider exercises padding.
  const rw = keepWidths(residual, 0.25);
  rw[1] = 3;
  // A one-channel batch (Fashion-MNIST's) once entered the engine with channels-last strides, and at these widths
  // libtorch's channels-last path gave gradients below the stride-2 zero-pad block that were off by up to 6%.
  const oneChannel = buildNet({ family: 'resnet20', input: [10, 10, 1], classes: 4 });
  const ow = keepWidths(oneChannel, 0.5);
  ow[2] = 24;
  return [
    { name: 'residual net with strided zero-pad shortcuts', spec: residual, widths: rw, opt: OPT },
    { name: 'one-channel input, widths in multiples of 8', spec: oneChannel, widths: ow, opt: OPT },
    { name: 'depthwise-separable net, Nesterov', spec: depthwiseNet(), widths: [6, 9, 11], opt: { ...OPT, nesterov: true } },
  ];
}
