/**
 * Small-scale check of the gradient-flow claims about importance measures (Lubana & Dick, ICLR 2021) and of
 * inherited weights against training from scratch, on Fashion-MNIST with ResNet-20.
 *
 *   node --import tsx analysis/pruning-claims/run.ts [--seeds 3] [--subset 0.02] [--parent-epochs 3] [--ft-epochs 2] [--test-images 2000]
 *
 * Per seed: train a parent, snapshot it at initialisation and after training; prune each snapshot to keep 0.5 of every group
 * by each criterion and fine-tune; train the same widths from scratch for the fine-tuning epochs, and for as many
 * epochs as cost the parent's training plus the fine-tuning (compute-matched). Writes results.jsonl beside itself.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { complexity } from '../../src/complexity/count.js';
import { channelMap } from '../../src/nets/channels.js';
import { buildNet } from '../../src/nets/registry.js';
import { baseWidths, keepWidths } from '../../src/nets/resolve.js';
import { chooseKept } from '../../src/pruning/choose.js';
import { scoreGroups } from '../../src/pruning/importance.js';
import { makeBatch, normaliser } from '../../src/training/data/batch.js';
import { loadData } from '../../src/training/data/load.js';
import { permutation } from '../../src/training/data/prepare.js';
import type { EngineBatch, WeightSet } from '../../src/training/engine.js';
import { selectEngine } from '../../src/training/engines/select.js';
import { sliceWeights } from '../../src/training/inherit.js';
import { train, type LoopSettings } from '../../src/training/train.js';
import { makeRng } from '../../src/util/rng.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SEEDS = arg('seeds', 3);
const SUBSET = arg('subset', 0.02);
const TEST_IMAGES = arg('test-images', 2000);
const PARENT_EPOCHS = arg('parent-epochs', 3);
const FT_EPOCHS = arg('ft-epochs', 2);
const KEEP = 0.5;
const CRITERIA = ['l2', 'snip', 'grasp', 'gradnorm', 'random'];
const OUT = join(import.meta.dirname, 'results.jsonl');

const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
const full = loadData({ name: 'fashion-mnist', subset: SUBSET, valFraction: 0.01, augment: true }, { shape: [28, 28, 1], classes: 10 });
// A fixed slice of the test set keeps the many final evaluations affordable on a shared 2-core machine.
const data = { ...full, test: { ...full.test, indices: full.test.indices.subarray(0, TEST_IMAGES) } };
const { engine, reason } = await selectEngine('auto');
console.log(`engine: ${reason}; ${data.train.indices.length} training images`);
const loop = (epochs: number, lr: number): LoopSettings => ({
  epochs,
  batchSize: 128,
  lr,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  warmupEpochs: 0,
  labelSmoothing: 0,
  augment: true,
  evalBatchSize: 500,
});
const opt = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };
const base = baseWidths(spec);
const widths = keepWidths(spec, KEEP);
const flopsRatio = complexity(spec, widths).flops / complexity(spec, base).flops;
writeFileSync(OUT, '');
const record = (row: Record<string, unknown>): void => {
  appendFileSync(OUT, JSON.stringify(row) + '\n');
  console.log(JSON.stringify(row));
};

function scoreBatches(seed: number): EngineBatch[] {
  const order = permutation(data.train.indices.length, makeRng(seed, 'score'));
  const lut = normaliser(data);
  return [0, 1, 2, 3].map((b) => makeBatch(data, data.train, order.subarray(b * 128, (b + 1) * 128), lut));
}

for (let seed = 1; seed <= SEEDS; seed++) {
  const parent = await engine.build(spec, base, seed, opt);
  const snapshots = new Map<number, WeightSet>([[0, await parent.readWeights()]]);
  const parentRun = await train(parent, data, loop(PARENT_EPOCHS, 0.1), seed);
  snapshots.set(PARENT_EPOCHS, await parent.readWeights());
  record({ kind: 'parent', seed, epochs: PARENT_EPOCHS, testError: parentRun.testError, curves: parentRun.curves.map((c) => c.trainLoss) });
  for (const [at, weights] of snapshots) {
    await parent.writeWeights(weights);
    for (const criterion of CRITERIA) {
      const hess = criterion === 'grasp' || criterion === 'gradnorm';
      const scored = await scoreGroups(parent, channelMap(spec), criterion, scoreBatches(seed), { seed, ...(hess ? { temperature: 200 } : {}) });
      const kept = chooseKept(channelMap(spec), scored.scores, base, widths);
      const child = sliceWeights(spec, base, weights, kept);
      const net = await engine.build(spec, widths, seed, opt);
      await net.writeWeights(child.weights);
      const ft = await train(net, data, loop(FT_EPOCHS, 0.05), seed);
      net.dispose();
      record({
        kind: 'pruned', seed, pruneAt: at, criterion, hessian: scored.hessian, flopsRatio,
        testError: ft.testError, trainLoss: ft.curves.map((c) => c.trainLoss), valError: ft.curves.map((c) => c.valError),
      });
    }
  }
  parent.dispose();
  // From scratch at the same widths: as many epochs as fine-tuning, and compute-matched with the parent's training.
  const matched = FT_EPOCHS + Math.round(PARENT_EPOCHS / flopsRatio);
  for (const epochs of [FT_EPOCHS, matched]) {
    const net = await engine.build(spec, widths, seed, opt);
    const r = await train(net, data, loop(epochs, 0.1), seed);
    net.dispose();
    record({ kind: 'scratch', seed, epochs, flopsRatio, testError: r.testError, trainLoss: r.curves.map((c) => c.trainLoss) });
  }
}
