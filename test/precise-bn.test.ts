/**
 * Precise BN: before every evaluation the BN running statistics are re-estimated from a fixed draw of training images
 * at the current weights. It changes what evaluation sees and nothing the training computes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { recalibrateBn } from '../src/training/bn-stats.js';
import { loadData } from '../src/training/data/load.js';
import type { WeightSet } from '../src/training/engine.js';
import { selectEngine } from '../src/training/engines/select.js';
import { evaluate, preciseBnBatches, train, type LoopSettings } from '../src/training/train.js';

const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
const widths = keepWidths(spec, 0.25);
const data = loadData({ name: 'synthetic', samples: 160, augment: false }, { shape: spec.ref.input, classes: 4 });
const loop = (preciseBn: number): LoopSettings => ({
  epochs: 2, batchSize: 16, lr: 0.2, momentum: 0.9, nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0, augment: false,
  ...(preciseBn ? { preciseBn } : {}),
});
const isStatistic = (name: string) => /\/moving_(mean|variance)$/.test(name);

function split(w: WeightSet, keep: (name: string) => boolean): Map<string, number[]> {
  return new Map([...w].filter(([n]) => keep(n)).map(([n, t]) => [n, Array.from(t.data)]));
}

test('precise BN leaves every trained weight as it was and replaces the running statistics by pooled ones', async () => {
  const { engine } = await selectEngine('cpu');
  const optimizer = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };
  const plain = await engine.build(spec, widths, 3, optimizer);
  const precise = await engine.build(spec, widths, 3, optimizer);
  const a = await train(plain, data, loop(0), 11);
  const b = await train(precise, data, loop(3), 11);
  assert.equal(a.status, 'complete');
  assert.equal(b.status, 'complete');
  assert.equal(b.trainLoss, a.trainLoss, 'the training losses are bit for bit those of a run without it');
  const wa = await plain.readWeights();
  const wb = await precise.readWeights();
  assert.deepEqual(split(wb, (n) => !isStatistic(n)), split(wa, (n) => !isStatistic(n)));
  assert.notDeepEqual(split(wb, isStatistic), split(wa, isStatistic), 'the statistics are re-estimated');

  // They are the pooled statistics of the fixed draw at the final weights, and evaluation used them.
  await recalibrateBn(plain, spec, preciseBnBatches(data, 3, 16, 11));
  const recalibrated = split(await plain.readWeights(), isStatistic);
  for (const [name, values] of split(wb, isStatistic)) {
    const want = recalibrated.get(name)!;
    for (let i = 0; i < values.length; i++) assert.ok(Math.abs(values[i] - want[i]) <= 1e-6 * (1 + Math.abs(want[i])), `${name}[${i}]`);
  }
  const val = await evaluate(plain, data, data.val, 32);
  assert.equal(b.valError, val.error);
  plain.dispose();
  precise.dispose();
});

test('precise BN draws a fixed set of unaugmented training images of its own', () => {
  const first = preciseBnBatches(data, 2, 16, 11);
  const again = preciseBnBatches(data, 2, 16, 11);
  const other = preciseBnBatches(data, 2, 16, 12);
  assert.equal(first.length, 2);
  assert.deepEqual(first.map((x) => x.size), [16, 16]);
  assert.deepEqual(first.map((x) => Array.from(x.x)), again.map((x) => Array.from(x.x)));
  assert.notDeepEqual(first.map((x) => Array.from(x.x)), other.map((x) => Array.from(x.x)));
  // More batches than the split holds: every image once.
  const all = preciseBnBatches(data, 1000, 16, 11);
  assert.equal(all.reduce((n, x) => n + x.size, 0), data.train.indices.length);
});
