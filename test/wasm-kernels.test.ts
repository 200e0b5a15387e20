/** Every kernel we register on wasm, checked numerically against the pure-JS cpu backend. */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/training/backends/select.js';
import { filterGradChunkBytes, setFilterGradChunkBytes } from '../src/training/backends/kernels/conv2d-backprop-filter.js';
import { setStridedInputGradMode } from '../src/training/backends/kernels/conv2d-backprop-input.js';
import { maskGradSimdFor } from '../src/training/backends/simd/mask-grad.js';
import { batchNormTraining, withFusedBatchNorm } from '../src/training/backends/batch-norm.js';
import { makeRng } from '../src/util/rng.js';
import { simdKernelsFor, type WasmHeap } from '../src/training/backends/simd/channel-kernels.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

function randomValues(size: number, seed: string): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: size }, () => rng() * 2 - 1);
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `f` on a backend and returns its outputs' values; inputs are rebuilt there from plain arrays. */
async function valuesOn(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const values = outs.map((o) => o.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

/** Asserts |a - b| <= 1e-4 * max|b| + 1e-5 elementwise; a transposed or shifted result is off by O(max|b|). */
function assertClose(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-4 * scale + 1e-5;
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]} (tolerance ${tol.toExponential(2)})`);
    }
  }
}

async function compareBackends(label: string, f: () => tf.Tensor[]): Promise<void> {
  const expected = await valuesOn('cpu', f);
  const actual = await valuesOn('wasm', f);
  expected.forEach((e, i) => assertClose(actual[i], e, `${label} output ${i}`));
}

interface ConvCase {
  x: [number, number, number, number];
  k: number;
  outC: number;
  stride: number;
  pad: Pad;
}

// Up to 4 input channels take the im2col filter-gradient path, more the conv path.
const convCases: ConvCase[] = [
  { x: [3, 9, 9, 1], k: 3, outC: 5, stride: 1, pad: 'same' },
  { x: [2, 9, 8, 1], k: 3, outC: 4, stride: 2, pad: 'valid' },
  { x: [2, 8, 8, 6], k: 3, outC: 5, stride: 2, pad: 'same' },
  { x: [2, 11, 11, 5], k: 7, outC: 3, stride: 2, pad: 'same' },
  { x: [2, 9, 7, 6], k: 3, outC: 4, stride: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [2, 6, 6, 3], k: 1, outC: 4, stride: 1, pad: 'valid' },
  { x: [2, 6, 6, 3], k: 1, outC: 4, stride: 2, pad: 'same' },
  { x: [2, 7, 5, 3], k: 1, outC: 4, stride: 2, pad: 'valid' },
  { x: [2, 6, 6, 3], k: 3, outC: 5, stride: 1, pad: 'same' },
  { x: [3, 7, 9, 4], k: 3, outC: 2, stride: 1, pad: 'valid' },
  { x: [2, 8, 8, 3], k: 3, outC: 4, stride: 2, pad: 'same' },
  { x: [2, 7, 7, 3], k: 3, outC: 4, stride: 2, pad: 'same' },
  { x: [2, 9, 8, 3], k: 3, outC: 4, stride: 2, pad: 'valid' },
  { x: [2, 11, 11, 2], k: 7, outC: 3, stride: 2, pad: 'same' },
  { x: [2, 10, 9, 2], k: 7, outC: 3, stride: 1, pad: 'same' },
  { x: [2, 7, 6, 3], k: 3, outC: 4, stride: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { x: [2, 7, 6, 3], k: 3, outC: 4, stride: 2, pad: [[0, 0], [0, 1], [1, 1], [0, 0]] },
];

function describeCase(c: ConvCase): string {
  return `x ${c.x.join('x')} k${c.k} s${c.stride} ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)}`;
}

before(async () => {
  await selectBackend('cpu');
  await selectBackend('wasm');
});

async function checkConvCase(c: ConvCase): Promise<void> {
  const wShape = [c.k, c.k, c.x[3], c.outC];
  const xv = randomValues(size(c.x), `x${describeCase(c)}`);
  const wv = randomValues(size(wShape), `w${describeCase(c)}`);
  await compareBackends(describeCase(c), () => {
    const x = tf.tensor4d(xv, c.x);
    const w = tf.tensor4d(wv, wShape as [number, number, number, number]);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const r = tf.tensor(randomValues(y.size, `r${describeCase(c)}`), y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
    return [y, dx, dw];
  });
}

describe('wasm conv2d gradients match cpu', () => {
  for (const c of convCases) test(describeCase(c), () => checkConvCase(c));
});

describe('strided input gradient with one shared phase filter matches cpu', () => {
  for (const c of convCases.filter((c) => c.stride > 1)) {
    test(describeCase(c), async () => {
      setStridedInputGradMode('shared');
      try {
        await checkConvCase(c);
      } finally {
        setStridedInputGradMode('phases');
      }
    });
  }
});

test('filter gradient summed over batch chunks (one image per chunk) matches cpu', async () => {
  const saved = filterGradChunkBytes;
  setFilterGradChunkBytes(1);
  try {
    // 5 input channels x 3x3 taps: the conv path (the im2col path takes patches of up to 32).
    const c: ConvCase = { x: [3, 7, 7, 5], k: 3, outC: 4, stride: 2, pad: 'same' };
    const xv = randomValues(size(c.x), 'chunk-x');
    const dyShape = [c.x[0], 4, 4, c.outC];
    const dyv = randomValues(size(dyShape), 'chunk-dy');
    await compareBackends('chunked filter gradient', () => [
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(xv, c.x), dy: tf.tensor(dyv, dyShape) }, { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, c.x[3], c.outC] }) as tf.Tensor,
    ]);
  } finally {
    setFilterGradChunkBytes(saved);
  }
});

describe('activation gradients (one SIMD pass on wasm) match cpu', () => {
  const shape = [3, 5, 7, 3]; // 315 elements: a SIMD body and a scalar tail
  const xv = randomValues(size(shape), 'act-x').map((v) => v * 8);
  const dyv = randomValues(size(shape), 'act-dy');
  const cases: [string, (x: tf.Tensor) => tf.Tensor][] = [
    ['relu', (x) => tf.relu(x)],
    ['relu6', (x) => tf.relu6(x)],
    ['clipByValue [-0.3, 0.5]', (x) => tf.clipByValue(x, -0.3, 0.5)],
    ['minimum(6, relu) as tfjs-layers relu6', (x) => tf.minimum(6, tf.relu(x))],
  ];
  for (const [label, f] of cases) {
    test(label, () => compareBackends(label, () => [tf.grad(f)(tf.tensor(xv, shape), tf.tensor(dyv, shape))]));
  }
  test('the wasm mask gradient runs on SIMD here', async () => {
    await tf.setBackend('wasm');
    assert.ok(maskGradSimdFor((tf.backend() as unknown as { wasm: WasmHeap }).wasm) != null);
  });
});

describe('wasm depthwise conv gradients match cpu', () => {
  const cases: ConvCase[] = [
    { x: [2, 6, 6, 3], k: 3, outC: 3, stride: 1, pad: 'same' },
    { x: [2, 7, 7, 4], k: 3, outC: 4, stride: 2, pad: 'same' },
    { x: [2, 8, 8, 3], k: 3, outC: 3, stride: 2, pad: 'same' },
    { x: [3, 9, 7, 2], k: 3, outC: 2, stride: 2, pad: 'valid' },
    { x: [2, 6, 5, 3], k: 1, outC: 3, stride: 1, pad: 'valid' },
    { x: [2, 9, 9, 2], k: 5, outC: 2, stride: 1, pad: 'same' },
    // 6 and 7 channels: SIMD chunks of 4 plus an overlapping tail chunk; 8: chunks only.
    { x: [2, 7, 7, 6], k: 3, outC: 6, stride: 1, pad: 'same' },
    { x: [3, 9, 8, 7], k: 3, outC: 7, stride: 2, pad: 'same' },
    { x: [2, 8, 8, 8], k: 3, outC: 8, stride: 2, pad: 'valid' },
  ];
  for (const c of cases) {
    test(describeCase(c), async () => {
      const wShape = [c.k, c.k, c.x[3], 1];
      const xv = randomValues(size(c.x), `dx${describeCase(c)}`);
      const wv = randomValues(size(wShape), `dw${describeCase(c)}`);
      await compareBackends(`depthwise ${describeCase(c)}`, () => {
        const x = tf.tensor4d(xv, c.x);
        const w = tf.tensor4d(wv, wShape as [number, number, number, number]);
        const y = tf.depthwiseConv2d(x, w, c.stride, c.pad as 'same' | 'valid');
        const r = tf.tensor(randomValues(y.size, `dr${describeCase(c)}`), y.shape);
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same' | 'valid'), r)))([x, w]);
        return [y, dx, dw];
      });
    });
  }
});

describe('fused batch norm', () => {
  // Channel counts 6, 3, 4, 13, 16 exercise the SIMD period lcm(C, 4), leftover elements and several blocks.
  const shapes: number[][] = [[3, 5, 4, 6], [2, 7, 7, 3], [10, 4], [5, 23, 23, 13], [4, 9, 9, 16]];
  for (const shape of shapes) {
    const c = shape[shape.length - 1];
    const xv = randomValues(size(shape), `bx${shape}`).map((v) => v * 3 + 0.5);
    const gv = randomValues(c, `bg${shape}`).map((v) => v + 1.5);
    const bv = randomValues(c, `bb${shape}`);
    const rv = randomValues(size(shape), `br${shape}`);
    /** Values and gradients of training-mode BN, either stock (moments + batchNorm) or fused. */
    const run = (fused: boolean) => () => {
      const x = tf.tensor(xv, shape);
      const gamma = tf.tensor1d(gv);
      const beta = tf.tensor1d(bv);
      const r = tf.tensor(rv, shape);
      const forward = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        if (fused) return batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3);
        const { mean, variance } = tf.moments(a, shape.slice(0, -1).map((_, i) => i));
        return { y: tf.batchNorm(a, mean, variance, b, g, 1e-3), mean, variance };
      };
      const { y, mean, variance } = forward(x, gamma, beta);
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(forward(a, g, b).y, r)))([x, gamma, beta]);
      return [y, mean, variance, ...grads];
    };
    test(`wasm fused kernel matches stock cpu composition, x ${shape.join('x')}`, async () => {
      const expected = await valuesOn('cpu', run(false));
      const actual = await valuesOn('wasm', run(true));
      expected.forEach((e, i) => assertClose(actual[i], e, `batch norm ${shape} output ${i}`));
    });
    test(`cpu fused kernel matches stock cpu composition, x ${shape.join('x')}`, async () => {
      const expected = await valuesOn('cpu', run(false));
      const actual = await valuesOn('cpu', run(true));
      expected.forEach((e, i) => assertClose(actual[i], e, `batch norm ${shape} output ${i}`));
    });
  }

  test('the wasm batch norm runs on the SIMD kernels here', async () => {
    await tf.setBackend('wasm');
    assert.ok(simdKernelsFor((tf.backend() as unknown as { wasm: WasmHeap }).wasm) != null);
  });

  test('a layer with the fused step trains like the stock layer and saves as a stock BatchNormalization', async () => {
    await tf.setBackend('wasm');
    const build = (fused: boolean) => {
      const bn = tf.layers.batchNormalization({ momentum: 0.9 });
      const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 4, kernelInitializer: 'ones' }), fused ? withFusedBatchNorm(bn) : bn, tf.layers.dense({ units: 2, kernelInitializer: 'ones' })] });
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
      return model;
    };
    const xs = tf.tensor2d(randomValues(24, 'lx'), [8, 3]);
    const ys = tf.tensor2d(randomValues(16, 'ly'), [8, 2]);
    const stock = build(false);
    const fused = build(true);
    await stock.trainOnBatch(xs, ys);
    await fused.trainOnBatch(xs, ys);
    const weights = (m: tf.LayersModel) => m.getWeights().map((w) => w.dataSync() as Float32Array);
    const expected = weights(stock);
    weights(fused).forEach((w, i) => assertClose(w, expected[i], `weight ${stock.weights[i].name}`));
    const saved = await new Promise<tf.io.ModelArtifacts>((resolve) => {
      void fused.save(tf.io.withSaveHandler(async (artifacts) => {
        resolve(artifacts);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }));
    });
    const layers = (saved.modelTopology as { config: { layers: { class_name: string }[] } }).config.layers.map((l) => l.class_name);
    assert.ok(layers.includes('BatchNormalization'), `saved layers: ${layers.join(', ')}`);
    // Stock loading gives the stock layer (its call is the prototype's) with the same inference outputs.
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved));
    const bn = loaded.layers[1];
    assert.equal(bn.getClassName(), 'BatchNormalization');
    assert.ok(!Object.prototype.hasOwnProperty.call(bn, 'call'), 'loaded layer uses the stock call');
    const before = fused.predict(xs) as tf.Tensor;
    const after = loaded.predict(xs) as tf.Tensor;
    assertClose(after.dataSync() as Float32Array, before.dataSync() as Float32Array, 'predictions after reload');
    tf.dispose([xs, ys, before, after]);
    loaded.dispose();
  });
});

describe('a convnet training step on wasm', () => {
  /** Conv (stride 1 and 2, 1x1 and 3x3), depthwise, fused BN, ReLU/ReLU6, add, pooling, dense, softmax CE, SGD momentum. */
  function buildNet(): tf.LayersModel {
    const st = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const input = tf.input({ shape: [9, 9, 3] });
    let x = st(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(1) }), input);
    x = st(withFusedBatchNorm(tf.layers.batchNormalization({ momentum: 0.9 })), x);
    x = st(tf.layers.reLU({ maxValue: 6 }), x);
    const y = st(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(2) }), x);
    let z = st(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthwiseInitializer: init(3) }), x);
    z = st(tf.layers.conv2d({ filters: 8, kernelSize: 1, kernelInitializer: init(4) }), z);
    let s = st(tf.layers.add(), [y, z]);
    s = st(tf.layers.activation({ activation: 'relu6' }), s);
    const m = st(tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }), s);
    const a = st(tf.layers.averagePooling2d({ poolSize: 2, padding: 'same' }), s);
    const c = st(tf.layers.globalAveragePooling2d({}), st(tf.layers.concatenate(), [m, a]));
    const out = st(tf.layers.dense({ units: 5, activation: 'softmax', kernelInitializer: init(5) }), c);
    const model = tf.model({ inputs: input, outputs: out });
    model.compile({ optimizer: tf.train.momentum(0.05, 0.9, true), loss: 'categoricalCrossentropy' });
    return model;
  }

  async function trainedWeights(backend: string, steps: number): Promise<{ weights: Float32Array[]; tensors: number[]; heap: number[] }> {
    await tf.setBackend(backend);
    const model = buildNet();
    const xs = tf.tensor4d(randomValues(4 * 9 * 9 * 3, 'netx'), [4, 9, 9, 3]);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 5);
    const tensors: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < steps; i++) {
      await model.trainOnBatch(xs, ys);
      tensors.push(tf.memory().numTensors);
      heap.push(tf.backend().numDataIds());
    }
    const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
    tf.dispose([xs, ys]);
    model.dispose();
    return { weights, tensors, heap };
  }

  test('matches cpu after three steps and leaks neither tensors nor heap data', async () => {
    const expected = await trainedWeights('cpu', 3);
    const actual = await trainedWeights('wasm', 3);
    actual.weights.forEach((w, i) => assertClose(w, expected.weights[i], `weight ${i}`));
    assert.equal(actual.tensors[2], actual.tensors[1], `tensors per step: ${actual.tensors}`);
    assert.equal(actual.heap[2], actual.heap[1], `wasm data ids per step: ${actual.heap}`);
  });
});
