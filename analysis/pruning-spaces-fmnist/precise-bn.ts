/**
 * Why the search uses precise BN: the uniform 25% ResNet-20 of campaign-25.json trained with 8 seeds on the full
 * Fashion-MNIST training split (torch engine), evaluated at the rung-0 and rung-1 stops of a 4-epoch cosine run with
 * the running averages of training and with the statistics re-estimated from 4, 16 and 64 batches.
 *
 *   node --import tsx analysis/pruning-spaces-fmnist/precise-bn.ts   (writes precise-bn.json beside it)
 */
import { writeFileSync } from 'node:fs';
import { mean, sampleStandardDeviation as sd } from 'simple-statistics';
import { buildNet } from '../../src/nets/registry.js';
import { recalibrateBn } from '../../src/training/bn-stats.js';
import { loadData } from '../../src/training/data/load.js';
import { selectEngine } from '../../src/training/engines/select.js';
import { evaluate, preciseBnBatches, rungStopSteps, runLength, train, type LoopSettings } from '../../src/training/train.js';

const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
const widths = [8, 16, 32, 8, 8, 8, 16, 16, 16, 32, 32, 32];
const data = loadData({ name: 'fashion-mnist', subset: 1, valFraction: 0.1, augment: false }, { shape: spec.ref.input, classes: 10 });
const settings: LoopSettings = { epochs: 4, batchSize: 128, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0, augment: false };
const { totalSteps } = runLength(settings, data.train.indices.length);
const stops = rungStopSteps(totalSteps, 3, 4).slice(0, 2);
const { engine } = await selectEngine('torch', { threads: 1 });
const rows: { seed: number; step: number; running: number; precise: Record<number, number> }[] = [];
for (let seed = 1; seed <= 8; seed++) {
  const net = await engine.build(spec, widths, seed, settings);
  let from = 0;
  for (const step of stops) {
    await train(net, data, { ...settings, startStep: from, stopStep: step }, seed);
    from = step;
    const running = (await evaluate(net, data, data.val, 256)).error;
    const precise: Record<number, number> = {};
    for (const batches of [4, 16, 64]) {
      await recalibrateBn(net, spec, preciseBnBatches(data, batches, 128, seed));
      precise[batches] = (await evaluate(net, data, data.val, 256)).error;
    }
    rows.push({ seed, step, running, precise });
    console.log(`seed ${seed} step ${step}: running ${(100 * running).toFixed(2)}%, precise 4/16/64 batches ${[4, 16, 64].map((b) => (100 * precise[b]).toFixed(2)).join('/')}%`);
  }
  net.dispose();
}
const summary = stops.map((step) => {
  const at = rows.filter((r) => r.step === step);
  const line = (xs: number[]) => ({ mean: 100 * mean(xs), sd: 100 * sd(xs), max: 100 * Math.max(...xs) });
  return { step, epochs: step / (totalSteps / 4), running: line(at.map((r) => r.running)), ...Object.fromEntries([4, 16, 64].map((b) => [`precise${b}`, line(at.map((r) => r.precise[b]))])) };
});
console.log(JSON.stringify(summary, null, 1));
writeFileSync(new URL('./precise-bn.json', import.meta.url), JSON.stringify({ widths, settings, stops, rows, summary }, null, 2) + '\n');
