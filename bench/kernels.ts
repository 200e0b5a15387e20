/**
 * Per-kernel timings of the wasm training kernels (ours vs stock), batch norm's share of a training step,
 * and a per-kernel profile of one resnet20 step (28x28x1, batch 128). Median of repeated runs; the machine
 * is shared, so compare numbers from the same run only. Usage: node --import tsx bench/kernels.ts [--quick]
 */
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { configureWasmPaths } from '../src/training/backends/wasm-setup.js';
import { registerWasmTrainingKernels } from '../src/training/backends/wasm-kernels.js';
import { batchNormTraining, withFusedBatchNorm } from '../src/training/backends/batch-norm.js';
import { median } from './lib/common.js';

const quick = process.argv.includes('--quick');
const BATCH = quick ? 32 : 128;
const REPS = quick ? 3 : 7;

/** Median wall time in ms of `f` (which returns tensors to dispose), after one warm-up call. */
function timeMs(f: () => tf.TensorContainer, reps = REPS): number {
  tf.dispose(f());
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = f();
    times.push(performance.now() - t0);
    tf.dispose(out);
  }
  return median(times);
}

configureWasmPaths();
await tf.setBackend('wasm');
await tf.ready();
tf.enableProdMode();
// Keep the stock kernel before ours replaces it, to compare against.
const stockBackpropInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm')!;
registerWasmTrainingKernels();
const backend = tf.backend() as unknown as { disposeData(id: unknown): void };

function runStock(kernel: tf.KernelConfig, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): void {
  const out = kernel.kernelFunc({ inputs, attrs, backend: tf.backend() } as never) as tf.TensorInfo;
  backend.disposeData(out.dataId);
}

interface ConvLayer {
  name: string;
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
}

/** The distinct convolutions of resnet20 on 28x28x1 (shortcuts are frozen 1x1 stride-2 convs). */
const layers: ConvLayer[] = [
  { name: 'stem 3x3 1->16', hw: 28, cin: 1, cout: 16, k: 3, stride: 1 },
  { name: 'stage1 3x3 16->16', hw: 28, cin: 16, cout: 16, k: 3, stride: 1 },
  { name: 'stage2 3x3/2 16->32', hw: 28, cin: 16, cout: 32, k: 3, stride: 2 },
  { name: 'stage2 3x3 32->32', hw: 14, cin: 32, cout: 32, k: 3, stride: 1 },
  { name: 'stage3 3x3/2 32->64', hw: 14, cin: 32, cout: 64, k: 3, stride: 2 },
  { name: 'stage3 3x3 64->64', hw: 7, cin: 64, cout: 64, k: 3, stride: 1 },
  { name: 'shortcut 1x1/2 16->32', hw: 28, cin: 16, cout: 32, k: 1, stride: 2 },
];

console.log(`${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, load average ${loadavg()[0].toFixed(1)} (timings scale with it)`);
console.log(`wasm kernels, batch ${BATCH}, median of ${REPS} (ms); GMAC/s for the forward conv`);
console.log('layer'.padEnd(24) + ['fwd conv', 'dx ours', 'dx stock', 'dW ours', 'fwd GMAC/s'].map((h) => h.padStart(11)).join(''));
for (const l of layers) {
  const x = tf.randomNormal([BATCH, l.hw, l.hw, l.cin]) as tf.Tensor4D;
  const w = tf.randomNormal([l.k, l.k, l.cin, l.cout]) as tf.Tensor4D;
  const y = tf.conv2d(x, w, l.stride, 'same');
  const dy = tf.randomNormal(y.shape);
  const attrs = { strides: [l.stride, l.stride], pad: 'same', dataFormat: 'NHWC' };
  const fwd = timeMs(() => tf.conv2d(x, w, l.stride, 'same'));
  const dx = timeMs(() => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: x.shape }) as tf.Tensor);
  const dxStock = timeMs(() => { runStock(stockBackpropInput, { dy, filter: w }, { ...attrs, inputShape: x.shape }); return []; }, Math.min(REPS, 3));
  const dW = timeMs(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: w.shape }) as tf.Tensor);
  const macs = y.size * l.k * l.k * l.cin;
  console.log(l.name.padEnd(24) + [fwd, dx, dxStock, dW, macs / fwd / 1e6].map((v) => v.toFixed(2).padStart(11)).join(''));
  tf.dispose([x, w, y, dy]);
}

console.log(`\ndepthwise 3x3 and pointwise 1x1 (MobileNet-style shapes), batch ${BATCH}, median ms`);
console.log('layer'.padEnd(24) + ['fwd', 'dx ours', 'dW ours'].map((h) => h.padStart(11)).join(''));
for (const [hw, c, stride] of [[32, 32, 1], [32, 64, 2], [16, 128, 1], [8, 256, 1]]) {
  const x = tf.randomNormal([BATCH, hw, hw, c]) as tf.Tensor4D;
  const dw = tf.randomNormal([3, 3, c, 1]) as tf.Tensor4D;
  const y = tf.depthwiseConv2d(x, dw, stride, 'same');
  const dy = tf.randomNormal(y.shape);
  const attrs = { strides: [stride, stride], dilations: [1, 1], pad: 'same' };
  const row = [
    timeMs(() => tf.depthwiseConv2d(x, dw, stride, 'same')),
    timeMs(() => tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter: dw }, { ...attrs, inputShape: x.shape }) as tf.Tensor),
    timeMs(() => tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...attrs, filterShape: dw.shape }) as tf.Tensor),
  ];
  console.log(`depthwise ${hw}x${hw}x${c}/${stride}`.padEnd(24) + row.map((v) => v.toFixed(2).padStart(11)).join(''));
  const pw = tf.randomNormal([1, 1, c, c]) as tf.Tensor4D;
  const pattrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC' };
  const prow = [
    timeMs(() => tf.conv2d(x, pw, 1, 'same')),
    timeMs(() => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: x, filter: pw }, { ...pattrs, inputShape: x.shape }) as tf.Tensor),
    timeMs(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: x }, { ...pattrs, filterShape: pw.shape }) as tf.Tensor),
  ];
  console.log(`pointwise ${hw}x${hw}x${c}`.padEnd(24) + prow.map((v) => v.toFixed(2).padStart(11)).join(''));
  tf.dispose([x, dw, y, dy, pw]);
}

console.log(`\nbatch norm forward+backward on wasm, median ms (stock = tfjs-layers' moments + batchNorm composition)`);
for (const [hw, c] of [[28, 16], [14, 32], [7, 64]]) {
  const x = tf.randomNormal([BATCH, hw, hw, c]);
  const gamma = tf.ones([c]) as tf.Tensor1D;
  const beta = tf.zeros([c]) as tf.Tensor1D;
  const dy = tf.randomNormal(x.shape);
  const stock = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(a, [0, 1, 2]);
    return tf.batchNorm(a, mean, variance, b, g, 1e-5);
  };
  const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5).y;
  const step = (f: typeof stock) => () => tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(a, g, b))([x, gamma, beta], dy);
  console.log(`  ${BATCH}x${hw}x${hw}x${c}: stock ${timeMs(step(stock)).toFixed(2)}  fused ${timeMs(step(fused)).toFixed(2)}`);
  tf.dispose([x, gamma, beta, dy]);
}

/** resnet20 (3 stages x 3 basic blocks, 16/32/64) on 28x28x1 with frozen 1x1/2 shortcuts, as src/training/model.ts builds it. */
function resnet20(bn: 'stock' | 'fused' | 'none'): tf.LayersModel {
  const norm = (t: tf.SymbolicTensor): tf.SymbolicTensor => {
    if (bn === 'none') return t;
    const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
    return (bn === 'fused' ? withFusedBatchNorm(layer) : layer).apply(t) as tf.SymbolicTensor;
  };
  const conv = (t: tf.SymbolicTensor, filters: number, stride: number) =>
    tf.layers.conv2d({ filters, kernelSize: 3, strides: stride, padding: 'same', useBias: false }).apply(t) as tf.SymbolicTensor;
  const relu = (t: tf.SymbolicTensor) => tf.layers.reLU().apply(t) as tf.SymbolicTensor;
  const input = tf.input({ shape: [28, 28, 1] });
  let x = relu(norm(conv(input, 16, 1)));
  for (const [stage, width] of [16, 32, 64].entries()) {
    for (let block = 0; block < 3; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      let shortcut = x;
      if (stride !== 1) {
        shortcut = tf.layers.conv2d({ filters: width, kernelSize: 1, strides: 2, padding: 'same', useBias: false, trainable: false }).apply(x) as tf.SymbolicTensor;
      }
      const h = norm(conv(relu(norm(conv(x, width, stride))), width, 1));
      x = relu(tf.layers.add().apply([h, shortcut]) as tf.SymbolicTensor);
    }
  }
  const pooled = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 10, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: logits });
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });
  return model;
}

const xs = tf.randomNormal([BATCH, 28, 28, 1]);
const ys = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32') as tf.Tensor1D, 10);
const stepTimes: Record<string, number> = {};
const stepCpu: Record<string, number> = {};
for (const bn of ['stock', 'fused', 'none'] as const) {
  const model = resnet20(bn);
  const times: number[] = [];
  const cpuTimes: number[] = [];
  await model.trainOnBatch(xs, ys);
  for (let i = 0; i < REPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await model.trainOnBatch(xs, ys);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1000);
  }
  stepTimes[bn] = median(times);
  stepCpu[bn] = median(cpuTimes);
  model.dispose();
}
// CPU time of this process is less inflated than wall time when other processes share the cores.
console.log(`\nresnet20 train step on wasm, batch ${BATCH}, median wall ms (images/s) | median CPU ms (images per CPU-second):`);
for (const [bn, ms] of Object.entries(stepTimes)) {
  console.log(`  BN ${bn.padEnd(6)} ${ms.toFixed(1).padStart(8)}  (${((BATCH * 1000) / ms).toFixed(0)} img/s) | ${stepCpu[bn].toFixed(0).padStart(6)}  (${((BATCH * 1000) / stepCpu[bn]).toFixed(0)})`);
}
console.log(`  BN share of a step: stock ${(100 * (1 - stepTimes.none / stepTimes.stock)).toFixed(0)}%, fused ${(100 * (1 - stepTimes.none / stepTimes.fused)).toFixed(0)}%`);

/** Wraps every wasm kernel to total its top-level time over one training step (nested calls count once). */
function profileStep(model: tf.LayersModel): Map<string, { ms: number; calls: number }> {
  const totals = new Map<string, { ms: number; calls: number }>();
  const configs = tf.getKernelsForBackend('wasm');
  const originals = configs.map((c) => c.kernelFunc);
  let depth = 0;
  configs.forEach((c, i) => {
    (c as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      depth++;
      const t0 = performance.now();
      try {
        return originals[i](args);
      } finally {
        depth--;
        if (depth === 0) {
          const e = totals.get(c.kernelName) ?? { ms: 0, calls: 0 };
          e.ms += performance.now() - t0;
          e.calls++;
          totals.set(c.kernelName, e);
        }
      }
    };
  });
  return Object.assign(totals, { restore: () => configs.forEach((c, i) => ((c as { kernelFunc: tf.KernelFunc }).kernelFunc = originals[i])) });
}

/** Kernel time of one profiled step, total and in our fused batch-norm kernels. */
const profiled: Record<string, { total: number; bn: number }> = {};
for (const bn of ['fused', 'stock'] as const) {
  const model = resnet20(bn);
  await model.trainOnBatch(xs, ys);
  const totals = profileStep(model) as Map<string, { ms: number; calls: number }> & { restore(): void };
  const t0 = performance.now();
  await model.trainOnBatch(xs, ys);
  const wall = performance.now() - t0;
  totals.restore();
  const kernelMs = [...totals.values()].reduce((a, b) => a + b.ms, 0);
  console.log(`\none resnet20 step, BN ${bn}: ${wall.toFixed(1)} ms wall, ${kernelMs.toFixed(1)} ms in kernels; top kernels:`);
  for (const [name, e] of [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
    console.log(`  ${name.padEnd(30)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(5)} calls`);
  }
  const bnMs = ['PrunespaceBatchNormTrain', 'PrunespaceBatchNormTrainGrad'].reduce((a, k) => a + (totals.get(k)?.ms ?? 0), 0);
  profiled[bn] = { total: kernelMs, bn: bnMs };
  model.dispose();
}
// Less sensitive to machine load than differences of step times: the stock BN share is the kernel time the
// fused step does not spend outside its BN kernels.
const nonBn = profiled.fused.total - profiled.fused.bn;
console.log(`load average now ${loadavg()[0].toFixed(1)}`);
console.log(`\nBN share of kernel time (profiled steps): stock ${(100 * (1 - nonBn / profiled.stock.total)).toFixed(0)}%, fused ${(100 * profiled.fused.bn / profiled.fused.total).toFixed(1)}%`);
