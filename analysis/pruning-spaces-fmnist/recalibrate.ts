/**
 * Claim 3's pruned networks that were made before `prune` measured these, with the BN statistics re-estimated on 16
 * training batches (as `prune` and `train` now do):
 * - right after pruning, rebuilt from the parent and each network's recorded kept channels (BN re-estimated at the
 *   pruned weights): results/claim3-rNN/recalibrated.json ({ run file: error }), which claims.ts reads for runs whose
 *   JSON lacks `prunedRecalibratedTestError`;
 * - after fine-tuning, from each saved network, for fine-tuning that evaluated with the running averages (no
 *   --precise-bn): results/claim3-rNN/fine-tuned-recalibrated.json, so that claims.ts compares them with the scratch
 *   runs (train's precise BN) on the same footing.
 *
 *   node --import tsx analysis/pruning-spaces-fmnist/recalibrate.ts 25     (after run.sh analyse)
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPrepared, readParent, readParentWeights, recalibratedTestError } from '../../src/pruning/prune.js';
import { selectBackend } from '../../src/training/backends/select.js';
import { startTorch } from '../../src/training/engines/torch.js';
import { sliceWeights } from '../../src/training/inherit.js';

const here = import.meta.dirname;
const regime = process.argv[2];
if (regime !== '25' && regime !== '50') {
  console.error('recalibrate.ts: regime must be 25 or 50');
  process.exit(2);
}
const runs = join(here, 'runs');
const out = join(here, 'results', `claim3-r${regime}`, 'recalibrated.json');
await selectBackend('cpu');
const torch = startTorch(1, { cpuOnly: true });
if (!torch.ok) throw new Error(torch.detail);
const parent = readParent(join(runs, 'parent-15ep'));
const weights = await readParentWeights(parent);
const BATCH = 128;
const errors: Record<string, number> = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
for (const file of readdirSync(runs).filter((f) => new RegExp(`^pruned-r${regime}-.*-s\\d+\\.json$`).test(f)).sort()) {
  const name = file.replace(`-r${regime}-`, '-');
  if (name in errors) continue;
  const meta = JSON.parse(readFileSync(join(runs, file.replace(/\.json$/, ''), 'prunespace.json'), 'utf8'));
  const data = loadPrepared(meta.settings.data, parent.spec);
  const child = sliceWeights(parent.spec, meta.pruned.parentWidths, weights, meta.pruned.kept);
  const net = await torch.engine.build(parent.spec, child.widths, meta.seed, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
  try {
    await net.writeWeights(child.weights);
    errors[name] = await recalibratedTestError(net, data, BATCH, meta.seed);
  } finally {
    net.dispose();
  }
  console.log(`${name}: ${(100 * errors[name]).toFixed(2)}% (recorded with the parent's BN: ${(100 * meta.metrics.prunedTestError).toFixed(2)}%)`);
  writeFileSync(out, JSON.stringify(errors, null, 2) + '\n');
}

const outTuned = join(here, 'results', `claim3-r${regime}`, 'fine-tuned-recalibrated.json');
const tuned: Record<string, number> = existsSync(outTuned) ? JSON.parse(readFileSync(outTuned, 'utf8')) : {};
for (const file of readdirSync(runs).filter((f) => new RegExp(`^pruned-r${regime}-.*-s\\d+\\.json$`).test(f)).sort()) {
  const name = file.replace(`-r${regime}-`, '-');
  const saved = readParent(join(runs, file.replace(/\.json$/, '')));
  const { settings, seed, metrics } = saved.metadata as unknown as { settings: { preciseBn?: number; epochs: number; data: never }; seed: number; metrics: { testError: number } };
  if (name in tuned || settings.preciseBn || settings.epochs === 0) continue;
  const net = await torch.engine.build(saved.spec, saved.metadata.widths, seed, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
  try {
    await net.writeWeights(await readParentWeights(saved));
    tuned[name] = await recalibratedTestError(net, loadPrepared(settings.data, saved.spec), BATCH, seed);
  } finally {
    net.dispose();
  }
  console.log(`${name} after fine-tuning: ${(100 * tuned[name]).toFixed(2)}% (recorded with the running averages: ${(100 * metrics.testError).toFixed(2)}%)`);
  writeFileSync(outTuned, JSON.stringify(tuned, null, 2) + '\n');
}
