/** The channel map and weight inheritance: sliced subnetworks compute exactly what the parent computes with the pruned channels removed. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { compileComplexity } from '../src/complexity/terms.js';
import { channelMap } from '../src/nets/channels.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import type { NetSpec, Shape } from '../src/nets/types.js';
import { selectBackend } from '../src/training/backends/select.js';
import { loadData } from '../src/training/data/load.js';
import type { WeightSet } from '../src/training/engine.js';
import { readLayersWeights, writeLayersWeights } from '../src/training/engines/layers-weights.js';
import { selectEngine } from '../src/training/engines/select.js';
import { tfjsEngine } from '../src/training/engines/tfjs.js';
import { startTorch } from '../src/training/engines/torch.js';
import { checkKept, keepAll, sliceWeights, type KeptIndices } from '../src/training/inherit.js';
import { buildModel, trainableParams } from '../src/training/model.js';
import { train } from '../src/training/train.js';
import { UserError } from '../src/util/errors.js';
import { makeRng } from '../src/util/rng.js';

let backend: Awaited<ReturnType<typeof selectBackend>>;
before(async () => {
  backend = await selectBackend('auto');
});

/** A parent with random weights and non-trivial BN statistics, standing in for a trained one. */
function parentModel(spec: NetSpec, seed: number): { model: tf.LayersModel; weights: WeightSet } {
  const model = buildModel(spec, baseWidths(spec), seed);
  const weights = readLayersWeights(model, spec);
  const rng = makeRng(seed, 'bn');
  for (const [name, t] of weights) {
    const fill = (f: () => number) => t.data.forEach((_, i) => (t.data[i] = f()));
    if (name.endsWith('/gamma')) fill(() => 0.5 + rng());
    if (name.endsWith('/beta') || name.endsWith('/moving_mean')) fill(() => 0.2 * (rng() - 0.5));
    if (name.endsWith('/moving_variance')) fill(() => 0.5 + rng());
  }
  writeLayersWeights(model, spec, weights);
  return { model, weights };
}

function logits(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync() as Float32Array);
}

/** The parent with every pruned channel forced to zero: BN scale and shift zeroed, zero-pad shortcuts masked. */
function maskedParent(spec: NetSpec, seed: number, weights: WeightSet, kept: KeptIndices): tf.LayersModel {
  const map = channelMap(spec);
  const masked: WeightSet = new Map([...weights].map(([n, t]) => [n, { shape: t.shape, data: t.data.slice() }]));
  for (const g of map.groups) {
    const keep = new Set(kept[g.group.id]);
    for (const bn of g.bns) {
      for (const n of [bn.gamma, bn.beta]) masked.get(n)!.data.forEach((_, c, d) => (keep.has(c) ? 0 : (d[c] = 0)));
    }
  }
  const model = buildModel(spec, baseWidths(spec), seed);
  writeLayersWeights(model, spec, masked);
  for (const z of map.zeroPad) {
    const layer = model.getLayer(z.node);
    const [k] = layer.getWeights();
    const [, , cin, cout] = k.shape;
    const data = k.dataSync().slice();
    const keepOut = new Set(kept[z.to]);
    for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) if (!keepOut.has(o)) data[i * cout + o] = 0;
    layer.setWeights([tf.tensor4d(data, k.shape as [number, number, number, number])]);
  }
  return model;
}

function childModel(spec: NetSpec, weights: WeightSet, kept: KeptIndices): tf.LayersModel {
  const sliced = sliceWeights(spec, baseWidths(spec), weights, kept);
  const model = buildModel(spec, sliced.widths, 99);
  writeLayersWeights(model, spec, sliced.weights);
  return model;
}

function randomKept(spec: NetSpec, seed: number): KeptIndices {
  const rng = makeRng(seed, 'kept');
  return spec.groups.map((g) => {
    const order = Array.from({ length: g.base }, (_, i) => i).sort(() => rng() - 0.5);
    return order.slice(0, 1 + Math.floor(rng() * g.base));
  });
}

const input = (shape: Shape, n = 3) => tf.randomNormal([n, ...shape], 0, 1, 'float32', 5);

test('the channel map names every weight of the model with the axis length of its group, for every family', () => {
  const cases: [string, Shape, 'zeropad' | 'projection'][] = [
    ['resnet20', [8, 8, 1], 'zeropad'],
    ['resnet20', [8, 8, 1], 'projection'],
    ['vgg-small', [16, 16, 3], 'zeropad'],
    ['vgg13', [32, 32, 3], 'zeropad'],
    ['mobilenet-v1-cifar', [8, 8, 3], 'zeropad'],
    ['mobilenet-v2-cifar', [8, 8, 3], 'zeropad'],
    ['resnet50', [32, 32, 3], 'zeropad'],
  ];
  for (const [family, shape, shortcut] of cases) {
    const spec = buildNet({ family, input: shape, classes: 5, shortcut });
    const widths = spec.groups.map((g, i) => Math.max(1, Math.round(g.base * (0.3 + 0.6 * ((i * 7) % 5) / 5))));
    const model = buildModel(spec, widths, 1);
    const shapes = new Map(model.weights.map((v) => [v.originalName, v.shape]));
    const covered = new Set<string>();
    const map = channelMap(spec);
    for (const g of map.groups) {
      const w = widths[g.group.id];
      const check = (name: string, axis: number, len: number) => {
        assert.ok(shapes.has(name), `${family}: ${name} exists`);
        assert.equal(shapes.get(name)![axis], len, `${family}: ${name} axis ${axis}`);
        covered.add(name);
      };
      for (const c of g.convs) {
        check(c.kernel, 3, w);
        if (c.bias) check(c.bias, 0, w);
      }
      for (const d of g.depthwise) check(d.kernel, 2, w);
      for (const b of g.bns) for (const n of [b.gamma, b.beta, b.movingMean, b.movingVariance]) check(n, 0, w);
      for (const c of g.consumers) {
        assert.equal(shapes.get(c.weight)![c.axis], w * c.spatial, `${family}: ${c.weight} input`);
        covered.add(c.weight);
      }
    }
    const zeroPads = new Set(map.zeroPad.map((z) => `${z.node}/kernel`));
    for (const name of shapes.keys()) {
      if (zeroPads.has(name) || name === 'fc/bias') continue;
      assert.ok(covered.has(name), `${family}: ${name} belongs to a group`);
    }
    // The compiled polynomial reads the same map: it must still agree with the layer-by-layer count.
    assert.deepEqual(compileComplexity(spec).evaluate(widths), complexity(spec, widths));
    model.dispose();
  }
  // vgg-small's classifier reads a flattened 2x2 map: each channel is 4 strided rows.
  const vgg = channelMap(buildNet({ family: 'vgg-small', input: [16, 16, 3], classes: 5 }));
  const fc = vgg.groups.flatMap((g) => g.consumers).find((c) => c.node === 'fc')!;
  assert.equal(fc.spatial, 4);
  // A depthwise conv shares its input's group; a CIFAR ResNet's zero-pad shortcuts couple stage 1 to 2 and 2 to 3.
  const v2 = channelMap(buildNet({ family: 'mobilenet-v2-cifar' }));
  assert.deepEqual(v2.groups.find((g) => g.group.name === 'block2.expand')!.depthwise.map((d) => d.node), ['block2.dw']);
  const r20 = channelMap(buildNet({ family: 'resnet20' }));
  assert.deepEqual(r20.zeroPad.map((z) => [z.from, z.to]), [[0, 1], [1, 2]]);
  assert.equal(r20.groups[0].convs.length, 4, 'stem and three block outputs make stage 1');
});

test('keeping every channel reproduces the parent exactly', () => {
  for (const [family, shape] of [['resnet20', [8, 8, 1]], ['vgg-small', [16, 16, 3]], ['mobilenet-v2-cifar', [8, 8, 3]]] as [string, Shape][]) {
    const spec = buildNet({ family, input: shape, classes: 4 });
    const { model, weights } = parentModel(spec, 3);
    const child = childModel(spec, weights, keepAll(baseWidths(spec)));
    const x = input(shape);
    assert.deepEqual(logits(child, x), logits(model, x), family);
    model.dispose();
    child.dispose();
  }
});

test('a pruned child computes what the parent computes with the pruned channels zeroed', () => {
  const close = (a: Float32Array, b: Float32Array, what: string) => {
    const scale = Math.max(...b.map(Math.abs));
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-4 * scale + 1e-5, `${what}: logit ${i} ${v} vs ${b[i]}`));
  };
  for (const [family, shape, shortcut] of [
    ['vgg-small', [16, 16, 3], 'zeropad'],
    ['mobilenet-v2-cifar', [8, 8, 3], 'zeropad'],
    ['resnet20', [8, 8, 1], 'projection'],
  ] as [string, Shape, 'zeropad' | 'projection'][]) {
    const spec = buildNet({ family, input: shape, classes: 4, shortcut });
    const { model, weights } = parentModel(spec, 4);
    const kept = randomKept(spec, 11);
    const x = input(shape);
    close(logits(childModel(spec, weights, kept), x), logits(maskedParent(spec, 4, weights, kept), x), family);
    model.dispose();
  }
  // Zero-pad shortcuts: stage 1 keeps 5, stage 2 only 3 (a prefix of stage 1's), stage 3 keeps 6 starting with
  // stage 2's three and then channel 0, which stage 1 kept but stage 2 dropped: its shortcut input must be zero.
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
  const { model, weights } = parentModel(spec, 5);
  const kept = randomKept(spec, 12);
  kept[0] = [5, 2, 9, 0, 11];
  kept[1] = [5, 2, 9];
  kept[2] = [5, 2, 9, 0, 40, 17];
  const x = input([8, 8, 1]);
  close(logits(childModel(spec, weights, kept), x), logits(maskedParent(spec, 5, weights, kept), x), 'resnet20 zero-pad');
  // Widening across the shortcut: stage 2 keeps stage 1's channels first, then channels stage 1 never had.
  kept[0] = [3, 7];
  kept[1] = [3, 7, 30, 1, 20];
  kept[2] = [3, 7, 30, 1, 20, 63];
  close(logits(childModel(spec, weights, kept), x), logits(maskedParent(spec, 5, weights, kept), x), 'resnet20 widening');
  model.dispose();
});

test('kept indices that a zero-pad shortcut cannot carry, or that do not fit, are refused', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
  const base = baseWidths(spec);
  const kept = keepAll(base);
  kept[1] = [1, 0, ...kept[1].slice(2)];
  assert.throws(() => checkKept(spec, base, kept), (e: Error) => e instanceof UserError && /zero-pad shortcut stage2\.block1\.shortcut.*position 0/.test(e.message));
  const dup = keepAll(base);
  dup[3] = [0, 0];
  assert.throws(() => checkKept(spec, base, dup), /appears twice/);
  const out = keepAll(base);
  out[3] = [16];
  assert.throws(() => checkKept(spec, base, out), /outside the parent's 0\.\.15/);
});

test('the materialised model has the complexity count of its widths, trains, and keeps its inherited start', async () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 });
  const { model, weights } = parentModel(spec, 6);
  const kept = randomKept(spec, 13);
  kept[0] = kept[1] = kept[2] = [4, 1, 8];
  const sliced = sliceWeights(spec, baseWidths(spec), weights, kept);
  const trainable = [...sliced.weights].filter(([n]) => !/moving_/.test(n)).reduce((s, [, t]) => s + t.data.length, 0);
  const c = complexity(spec, sliced.widths);
  assert.equal(trainable, c.params);
  const child = buildModel(spec, sliced.widths, 1);
  writeLayersWeights(child, spec, sliced.weights);
  assert.equal(trainableParams(child), c.params);
  child.dispose();
  const net = await tfjsEngine(backend).build(spec, sliced.widths, 1, { momentum: 0.9, nesterov: false, weightDecay: 0 });
  await net.writeWeights(sliced.weights);
  const data = loadData({ name: 'synthetic', samples: 64 }, { shape: [8, 8, 1], classes: 3 });
  const outcome = await train(net, data, { epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0, warmupEpochs: 0, labelSmoothing: 0 }, 1);
  assert.equal(outcome.status, 'complete');
  assert.ok(Number.isFinite(outcome.trainLoss!));
  const after = await net.readWeights();
  assert.notDeepEqual(after.get('stem/kernel')!.data, sliced.weights.get('stem/kernel')!.data);
  net.dispose();
  model.dispose();
});

test('inherited weights give the same logits on the torch engine as on tfjs, and keep 1.0 is exact there too', async (t) => {
  if (!startTorch(1).ok) {
    t.skip('torch addon not built');
    return;
  }
  const { engine } = await selectEngine('torch');
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
  const { model, weights } = parentModel(spec, 8);
  const x = input([8, 8, 1]);
  const batch = { x: x.dataSync() as Float32Array, size: 3 };
  const opt = { momentum: 0.9, nesterov: false, weightDecay: 0 };
  const parent = await engine.build(spec, baseWidths(spec), 1, opt);
  await parent.writeWeights(weights);
  const full = sliceWeights(spec, baseWidths(spec), weights, keepAll(baseWidths(spec)));
  const same = await engine.build(spec, full.widths, 2, opt);
  await same.writeWeights(full.weights);
  assert.deepEqual((await same.forward(batch, { training: false })).logits, (await parent.forward(batch, { training: false })).logits);
  const kept = randomKept(spec, 14);
  kept[0] = [5, 2, 9, 0, 11];
  kept[1] = [5, 2, 9];
  kept[2] = [5, 2, 9, 0, 40, 17];
  const sliced = sliceWeights(spec, baseWidths(spec), weights, kept);
  const child = await engine.build(spec, sliced.widths, 2, opt);
  await child.writeWeights(sliced.weights);
  const tfjsLogits = logits(childModel(spec, weights, kept), x);
  const torchLogits = (await child.forward(batch, { training: false })).logits;
  const scale = Math.max(...tfjsLogits.map(Math.abs));
  torchLogits.forEach((v, i) => assert.ok(Math.abs(v - tfjsLogits[i]) <= 1e-4 * scale, `logit ${i}: torch ${v}, tfjs ${tfjsLogits[i]}`));
  for (const n of [parent, same, child]) n.dispose();
  model.dispose();
});
