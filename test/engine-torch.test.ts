/**
 * The torch engine (libtorch addon) against the tfjs engine: parameter counts, weights in tfjs layout both ways,
 * saved models, the optimizer step, gradients, taps, H·v, evaluation, and concurrent trials in worker threads
 * (step-by-step equivalence with tfjs at every ISA level: engine-torch-isa.test.ts).
 * Skipped, with the reason shown, only where the addon was not built (no libtorch at npm install).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet, familyNames } from '../src/nets/registry.js';
import { batchOf, depthwiseNet, tapLoss } from './torch-equivalence.js';
import { baseWidths, keepWidths } from '../src/nets/resolve.js';
import type { NetSpec, WidthConfig } from '../src/nets/types.js';
import { selectBackend } from '../src/training/backends/select.js';
import { loadData } from '../src/training/data/load.js';
import type { Engine, EngineBatch, EngineNet, WeightSet } from '../src/training/engine.js';
import { tfjsEngine } from '../src/training/engines/tfjs.js';
import { startTorch, torchAddon, TorchNet } from '../src/training/engines/torch.js';
import { loadTrained, saveNet } from '../src/training/save.js';
import { evaluate, train } from '../src/training/train.js';
import { runTrial } from '../src/training/trial.js';
import type { TrialRequest } from '../src/training/types.js';
import { makeRng } from '../src/util/rng.js';

const { addon, problem } = torchAddon();
const skip = addon ? false : `torch addon not built: ${problem}`;
const OPT = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };

let tfjs: Engine;
let torch: Engine;
before(async () => {
  tfjs = tfjsEngine(await selectBackend('cpu'));
  if (addon) {
    const t = startTorch(1, { cpuOnly: true });
    assert.ok(t.ok);
    torch = t.engine;
  }
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** max |a - b| relative to max |a| over every tensor of two weight sets with the same names and shapes. */
function relDiff(a: WeightSet, b: WeightSet): number {
  let worst = 0;
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, wa] of a) {
    const wb = b.get(name)!;
    assert.deepEqual(wb.shape, wa.shape, name);
    const scale = Math.max(1e-6, ...wa.data.map(Math.abs));
    worst = Math.max(worst, maxAbsDiff(wa.data, wb.data) / scale);
  }
  return worst;
}

function randomWidths(spec: NetSpec, seed: number): WidthConfig {
  const rng = makeRng(seed, 'widths');
  return spec.groups.map((g) => 1 + Math.floor(rng() * g.base));
}

test('trainable parameters equal the complexity count for several width configurations of every family', { skip }, () => {
  for (const family of familyNames()) {
    const spec = buildNet({ family });
    for (const widths of [baseWidths(spec), keepWidths(spec, 0.5), randomWidths(spec, 1), randomWidths(spec, 2)]) {
      const net = new TorchNet(addon!, spec, widths, 'cpu', OPT);
      assert.equal(net.trainableParams(), complexity(spec, widths).params, `${family} at ${widths.join(',')}`);
      net.dispose();
    }
  }
});

test('same seed, same initial weights and names as the tfjs engine; tfjs weights load into torch and read back unchanged', { skip }, async () => {
  const spec = buildNet({ family: 'mobilenet-v2-cifar', input: [8, 8, 3], classes: 5 });
  const widths = keepWidths(spec, 0.25);
  const [a, b] = [await tfjs.build(spec, widths, 4, OPT), await torch.build(spec, widths, 4, OPT)];
  assert.equal(relDiff(await a.readWeights(), await b.readWeights()), 0);
  // Train the tfjs net a little so weights and running statistics move, then copy them over.
  const data = batchOf(spec, 16, 1);
  for (let i = 0; i < 3; i++) await a.trainStep(data, 0.05, 0);
  const trained = await a.readWeights();
  await b.writeWeights(trained);
  assert.equal(relDiff(trained, await b.readWeights()), 0);
  const x = batchOf(spec, 6, 2);
  const [fa, fb] = [await a.forward(x, { training: false }), await b.forward(x, { training: false })];
  assert.ok(maxAbsDiff(fa.logits, fb.logits) < 1e-4);
  await assert.rejects(b.writeWeights(new Map([['fc/kernel', { shape: [1, 2], data: new Float32Array(2) }]])), /fc\/kernel: shape 1x2/);
  a.dispose();
  b.dispose();
});

/**
 * The optimizer alone, over 20 steps fed the same gradients on both engines (momentum buffers, Nesterov, coupled
 * decay): without gradients computed from each engine's own weights nothing amplifies rounding, so the weights agree
 * to float32 precision. Gradients themselves are compared step by step in engine-torch-isa.test.ts.
 */
test('applyGradients: 20 momentum and Nesterov steps from the same gradients give the same weights as tfjs', { skip }, async () => {
  const spec = depthwiseNet();
  for (const nesterov of [false, true]) {
    const opt = { ...OPT, nesterov };
    const [a, b] = [await tfjs.build(spec, [6, 9, 11], 3, opt), await torch.build(spec, [6, 9, 11], 3, opt)];
    const rng = makeRng(5, 'grads');
    const shapes = await a.readWeights();
    const { grads } = await a.gradients(batchOf(spec, 4, 1), { kind: 'cross-entropy' });
    for (let step = 0; step < 20; step++) {
      const g: WeightSet = new Map([...grads.keys()].map((n) => [n, { shape: shapes.get(n)!.shape, data: shapes.get(n)!.data.map(() => rng() - 0.5) }]));
      await a.applyGradients(g, 0.05);
      await b.applyGradients(g, 0.05);
    }
    assert.ok(relDiff(await a.readWeights(), await b.readWeights()) < 1e-5, `nesterov ${nesterov}`);
    a.dispose();
    b.dispose();
  }
});

test('gradients (smoothing, temperature, outputs loss over taps) and forward taps agree with tfjs; BN statistics do not move', { skip }, async () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 2], classes: 3 });
  const widths = keepWidths(spec, 0.2);
  const [a, b] = [await tfjs.build(spec, widths, 5, OPT), await torch.build(spec, widths, 5, OPT)];
  const batch = batchOf(spec, 12, 3);
  const before = await b.readWeights();
  const taps = ['stem.bn', 'stage2.block1.add', 'pool'];
  for (const training of [true, false]) {
    const [fa, fb] = [await a.forward(batch, { training, taps }), await b.forward(batch, { training, taps })];
    for (const id of taps) assert.ok(maxAbsDiff(fa.taps.get(id)!, fb.taps.get(id)!) < 1e-4, `tap ${id}`);
    assert.ok(maxAbsDiff(fa.logits, fb.logits) < 1e-4);
  }
  const ce = { kind: 'cross-entropy' as const, labelSmoothing: 0.1, temperature: 2 };
  const [ga, gb] = [await a.gradients(batch, ce), await b.gradients(batch, ce)];
  assert.ok(Math.abs(ga.loss - gb.loss) < 1e-5);
  assert.ok(relDiff(ga.grads, gb.grads) < 1e-3, `cross-entropy grads ${relDiff(ga.grads, gb.grads)}`);
  // A loss written in TypeScript: 0.5 |tap|^2 on a feature map plus a linear term on the logits.
  const outputs = tapLoss('stage2.block1.add', 3);
  const [oa, ob] = [await a.gradients(batch, outputs), await b.gradients(batch, outputs)];
  assert.ok(Math.abs(oa.loss - ob.loss) < 1e-3 * Math.abs(oa.loss));
  assert.ok(relDiff(oa.grads, ob.grads) < 1e-3, `outputs grads ${relDiff(oa.grads, ob.grads)}`);
  assert.equal(relDiff(before, await b.readWeights()), 0, 'gradients changed weights or running statistics');
  // applyGradients is the same optimizer step on both engines.
  await a.applyGradients(ga.grads, 0.1);
  await b.applyGradients(gb.grads, 0.1);
  assert.ok(relDiff(await a.readWeights(), await b.readWeights()) < 1e-4);
  a.dispose();
  b.dispose();
});

test('hessianVector by double backprop: symmetric, and exact where a central difference is (torch only; tfjs has none)', { skip }, async () => {
  const spec = buildNet({ family: 'resnet20', input: [6, 6, 2], classes: 3 });
  const widths = keepWidths(spec, 0.2);
  const net = await torch.build(spec, widths, 2, OPT);
  assert.equal((await tfjs.build(spec, widths, 2, OPT)).hessianVector, undefined);
  const batch = batchOf(spec, 10, 4);
  const ce = { kind: 'cross-entropy' as const, labelSmoothing: 0.1 };
  const w0 = await net.readWeights();
  const { grads } = await net.gradients(batch, ce);
  const rng = makeRng(1, 'v');
  const random = (): WeightSet => new Map([...grads].map(([n, g]) => [n, { shape: g.shape, data: g.data.map(() => rng() - 0.5) }]));
  const dot = (a: WeightSet, b: WeightSet) => [...a].reduce((s, [n, t]) => s + t.data.reduce((q, x, i) => q + x * b.get(n)!.data[i], 0), 0);
  // u·Hv = v·Hu over every parameter (BN in training mode, double backward through all of it).
  const [u, v] = [random(), random()];
  const [hv, hu] = [await net.hessianVector!(batch, ce, v), await net.hessianVector!(batch, ce, u)];
  const [uhv, vhu] = [dot(u, hv), dot(v, hu)];
  assert.ok(Math.abs(uhv - vhu) < 1e-3 * Math.abs(uhv), `${uhv} vs ${vhu}`);
  // Moving only the classifier leaves every ReLU mask as it was, so the gradient is smooth along such a v and a central
  // difference is exact up to rounding: the whole column H·v, every layer's block included.
  const fcOnly: WeightSet = new Map([...v].map(([n, t]) => [n, n.startsWith('fc/') ? t : { shape: t.shape, data: new Float32Array(t.data.length) }]));
  const hfc = await net.hessianVector!(batch, ce, fcOnly);
  const eps = 1e-2;
  const shifted = async (sign: number) => {
    await net.writeWeights(new Map([...fcOnly].map(([n, d]) => [n, { shape: d.shape, data: w0.get(n)!.data.map((x, i) => x + sign * eps * d.data[i]) }])));
    return (await net.gradients(batch, ce)).grads;
  };
  const [gp, gm] = [await shifted(1), await shifted(-1)];
  let worst = 0;
  let scale = 0;
  for (const [n, h] of hfc) h.data.forEach((x, i) => {
    scale = Math.max(scale, Math.abs(x));
    worst = Math.max(worst, Math.abs(x - (gp.get(n)!.data[i] - gm.get(n)!.data[i]) / (2 * eps)));
  });
  assert.ok(scale > 0 && worst < 1e-2 * scale, `max |H·v - difference| ${worst} against max |H·v| ${scale}`);
  net.dispose();
});

test('a net trained on torch saves as a stock tfjs model that predicts the same; evaluation runs in inference mode', { skip }, async () => {
  const spec = buildNet({ family: 'resnet20', input: [12, 12, 1], classes: 3 });
  const widths = keepWidths(spec, 0.25);
  const net = await torch.build(spec, widths, 7, { ...OPT, nesterov: true });
  const data = loadData({ name: 'synthetic', samples: 96 }, { shape: [12, 12, 1], classes: 3 });
  const outcome = await train(net, data, { epochs: 1, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0.1 }, 7);
  assert.equal(outcome.status, 'complete');
  const dir = join(mkdtempSync(join(tmpdir(), 'prunespace-torch-save-')), 'model');
  await saveNet(net, dir, { net: spec.ref, widths, groups: spec.groups.map((g) => g.name), complexity: complexity(spec, widths), metrics: {}, seed: 7, savedAt: new Date().toISOString() });
  const { model } = await loadTrained(dir);
  const x = batchOf(spec, 9, 5);
  const expected = (await net.forward(x, { training: false })).logits;
  const got = tf.tidy(() => (model.predict(tf.tensor4d(x.x, [9, 12, 12, 1])) as tf.Tensor).dataSync() as Float32Array);
  assert.ok(maxAbsDiff(expected, got) < 1e-4, `max abs logit diff ${maxAbsDiff(expected, got)}`);
  // The engine's evaluation (inference mode, running statistics) equals the saved tfjs model's.
  const ours = await evaluate(net, data, data.val, 7);
  const copy = await tfjs.build(spec, widths, 7, OPT);
  await copy.writeWeights(await net.readWeights());
  const theirs = await evaluate(copy, data, data.val, 7);
  assert.ok(Math.abs(ours.loss - theirs.loss) < 1e-4 * Math.max(1, theirs.loss));
  assert.equal(ours.error, theirs.error);
  model.dispose();
  copy.dispose();
  net.dispose();
});

test('the addon is safe in worker threads: two concurrent trials give the results of one trial on the main thread', { skip }, async () => {
  const req: TrialRequest = {
    net: { family: 'resnet20', input: [8, 8, 1], classes: 3 },
    widths: keepWidths(buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 }), 0.25),
    seed: 11,
    settings: { data: { name: 'synthetic', samples: 128, augment: true }, epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0, backend: 'torch', threads: 1 },
  };
  const alone = await runTrial(req);
  assert.equal(alone.status, 'complete');
  assert.equal(alone.backend, 'torch');
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    import('tsx/esm/api').then((api) => api.register()).then(() => import(workerData.module))
      .then((m) => m.runTrial(workerData.req)).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ error: String(e) }));`;
  const module = new URL('../src/training/trial.ts', import.meta.url).href;
  const inWorker = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = new Worker(source, { eval: true, workerData: { module, req } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const results = await Promise.all([inWorker(), inWorker()]);
  for (const r of results) {
    assert.equal(r.error, undefined);
    assert.equal(r.status, 'complete');
    assert.equal(r.valError, alone.valError);
    assert.equal(r.testLoss, alone.testLoss);
    assert.deepEqual((r.curves as { trainLoss: number }[]).map((c) => c.trainLoss), alone.curves.map((c) => c.trainLoss));
  }
});
