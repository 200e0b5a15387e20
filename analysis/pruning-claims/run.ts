/**
 * Small-scale check of the gradient-flow claims about importance measures (Lubana & Dick, ICLR 2021) and of
 * inherited weights against training from scratch, on Fashion-MNIST with ResNet-20 or a MobileNet-style net.
 *
 *   node --import tsx analysis/pruning-claims/run.ts [--net resnet20|mobilenet-v1-cifar] [--seeds 3] [--subset 0.02] [--parent-epochs 3]
 *        [--ft-epochs 2] [--test-images 2000] [--out FILE]
 *
 * Per seed: train a parent; prune to keep 0.5 of every group by each criterion through the pruning-during-training path
 * (src/pruning/during-training.ts): at initialisation, then train the pruned net for the fine-tuning epochs; and after
 * the parent's training (--prune-at end), then fine-tune. Train the same widths from scratch for the fine-tuning
 * epochs, and for as many epochs as cost the parent's training plus the fine-tuning (compute-matched). Writes
 * results.jsonl beside itself (or --out).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { complexity } from '../../src/complexity/count.js';
import { buildNet } from '../../src/nets/registry.js';
import { baseWidths, keepWidths } from '../../src/nets/resolve.js';
import { trainWithPruning, type EarlyPruneRequest } from '../../src/pruning/during-training.js';
import { loadData } from '../../src/training/data/load.js';
import { selectEngine } from '../../src/training/engines/select.js';
import { train, type LoopSettings } from '../../src/training/train.js';
import type { TrainSettings } from '../../src/training/types.js';

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
const netAt = process.argv.indexOf('--net');
const NET = netAt > 0 ? process.argv[netAt + 1] : 'resnet20';
const outAt = process.argv.indexOf('--out');
const OUT = outAt > 0 ? resolve(process.argv[outAt + 1]) : join(import.meta.dirname, NET === 'resnet20' ? 'results.jsonl' : `results-${NET}.jsonl`);

const spec = buildNet({ family: NET, input: [28, 28, 1], classes: 10 });
// A fixed seeded sample of the test set keeps the many final evaluations affordable on a shared 2-core machine.
const dataSettings: TrainSettings['data'] = { name: 'fashion-mnist', subset: SUBSET, valFraction: 0.01, testSubset: Math.min(1, TEST_IMAGES / 10000), augment: true };
const data = loadData(dataSettings, { shape: [28, 28, 1], classes: 10 });
const { engine, reason } = await selectEngine('auto');
console.log(`engine: ${reason}; ${NET}; ${data.train.indices.length} training images`);
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

const settings = (epochs: number, lr: number): TrainSettings => {
  const { augment: _augment, evalBatchSize: _eval, ...rest } = loop(epochs, lr);
  return { ...rest, data: dataSettings, backend: engine.name as TrainSettings['backend'] };
};
/** One pruned run: the parent's training (or none), pruning by the criterion, then the fine-tuning epochs. */
const pruned = (seed: number, criterion: string, at: 0 | 'end'): EarlyPruneRequest => {
  const hess = criterion === 'grasp' || criterion === 'gradnorm';
  return {
    spec, target: { keep: KEEP }, criterion, steps: 1, every: 1, combine: 'sum', scoreBatches: 4, seed, engine,
    ...(hess ? { temperature: 200 } : {}),
    ...(at === 0
      ? { at, settings: settings(FT_EPOCHS, 0.05), finetuneEpochs: 0, finetuneLr: 0.05 }
      : { at, settings: settings(PARENT_EPOCHS, 0.1), finetuneEpochs: FT_EPOCHS, finetuneLr: 0.05 }),
  };
};

for (let seed = 1; seed <= SEEDS; seed++) {
  const parent = await engine.build(spec, base, seed, opt);
  const parentRun = await train(parent, data, loop(PARENT_EPOCHS, 0.1), seed);
  parent.dispose();
  record({ kind: 'parent', seed, epochs: PARENT_EPOCHS, testError: parentRun.testError, curves: parentRun.curves.map((c) => c.trainLoss) });
  for (const at of [0, 'end'] as const) {
    for (const criterion of CRITERIA) {
      // Pruning after the parent's training retrains the (seeded, identical) parent per criterion: the price of one path.
      const r = await trainWithPruning(pruned(seed, criterion, at));
      if (r.status !== 'complete') throw new Error(`seed ${seed}, ${criterion} at ${at}: ${r.error}`);
      const ft = at === 0 ? r.curves : r.curves.slice(PARENT_EPOCHS);
      record({
        kind: 'pruned', seed, pruneAt: at === 0 ? 0 : PARENT_EPOCHS, criterion, hessian: r.pruneSteps[0].hessian, flopsRatio,
        testError: r.testError, trainLoss: ft.map((c) => c.trainLoss), valError: ft.map((c) => c.valError),
      });
    }
  }
  // From scratch at the same widths: as many epochs as fine-tuning, and compute-matched with the parent's training.
  const matched = FT_EPOCHS + Math.round(PARENT_EPOCHS / flopsRatio);
  for (const epochs of [FT_EPOCHS, matched]) {
    const net = await engine.build(spec, widths, seed, opt);
    const r = await train(net, data, loop(epochs, 0.1), seed);
    net.dispose();
    record({ kind: 'scratch', seed, epochs, flopsRatio, testError: r.testError, trainLoss: r.curves.map((c) => c.trainLoss) });
  }
}
