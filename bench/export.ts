/**
 * The coordinator's trials.csv/trials.jsonl export on a 10,000-trial campaign store (20-epoch curves): the full
 * rewrite from every record against the incremental export, which re-serialises only trials that changed.
 * `npm run bench -- export`
 */
import { join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { prepareCampaign } from '../src/campaign/create.js';
import { exportTrials, TrialsExport } from '../src/campaign/export.js';
import { openCampaign } from '../src/campaign/store.js';
import type { EpochCurve } from '../src/training/types.js';

const TRIALS = Number(process.env.EXPORT_TRIALS ?? 10_000);
const EPOCHS = 20;
const dir = mkdtempSync(join(tmpdir(), 'prunespace-bench-export-'));
const spacePath = join(dir, 'space.json');
writeFileSync(spacePath, JSON.stringify({
  name: 'bench-export',
  network: { family: 'resnet20', input: '8x8x1', classes: 3 },
  samplers: [{ select: { kinds: ['stage', 'inner'] }, keep: { min: 0.1, max: 0.9 }, distribution: 'uniform', quantum: 1 }],
  regime: { flops: { min: 0.01, max: 1 } },
}));
const settings = {
  data: { name: 'synthetic' as const, samples: 64, augment: false }, epochs: EPOCHS, batchSize: 32, lr: 0.05, momentum: 0.9,
  nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0, backend: 'cpu' as const,
};
const t0 = performance.now();
const run = prepareCampaign({ spacePath, outDir: join(dir, 'run'), samples: TRIALS, seed: 1, settings: settings as never, maxAttempts: 2, saveModels: false, referenceSeeds: 0 } as never);
const s = openCampaign(run.dir);
const curve = (e: number): EpochCurve => ({ epoch: e, trainLoss: 1 / e, trainError: 0.5 / e, valLoss: 1.1 / e, valError: 0.55 / e, lr: 0.05, seconds: 0.1 } as EpochCurve);
const curves = Array.from({ length: EPOCHS }, (_, i) => curve(i + 1));
const all = s.trials();
// The last five stay waiting, to finish one between each of the incremental exports below.
for (const t of all.slice(0, -5)) {
  const a = s.start(t.index, { leaseMs: 60_000, maxAttempts: 2 });
  s.finish(a, { status: 'complete', valError: 0.3, testError: 0.31, trainLoss: 0.2, curves, wallSeconds: 1, imagesPerSecond: 1000, backend: 'cpu' } as never, 'w');
}
console.log(`store of ${all.length} trials (${EPOCHS}-epoch curves) built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}
const config = s.config();
const full: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  exportTrials(run.dir, config, s.trials());
  full.push(performance.now() - t);
}
const exporter = new TrialsExport(run.dir, config);
let t = performance.now();
exporter.write(s);
const first = performance.now() - t;
const incremental: number[] = [];
for (let i = 0; i < 5; i++) {
  // One trial changes between exports, as when one finishes in a running campaign.
  const a = s.start(all[all.length - 5 + i].index, { leaseMs: 60_000, maxAttempts: 2 });
  s.finish(a, { status: 'complete', valError: 0.3, testError: 0.31, trainLoss: 0.2, curves, wallSeconds: 1, imagesPerSecond: 1000, backend: 'cpu' } as never, 'w');
  t = performance.now();
  exporter.write(s);
  incremental.push(performance.now() - t);
}
console.log(`full rewrite from every record: ${median(full).toFixed(0)} ms an export (median of 5)`);
console.log(`incremental export: ${first.toFixed(0)} ms the first time, then ${median(incremental).toFixed(0)} ms an export with one trial changed (median of 5)`);
console.log(`at one export every 2 s the full rewrite keeps the coordinator busy ${(median(full) / 20).toFixed(1)}% of the time, the incremental one ${(median(incremental) / 20).toFixed(1)}%`);
s.close();
