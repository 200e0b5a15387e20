/**
 * Campaign throughput: candidates per hour with 1 and 2 (or --workers a,b,...) workers on tiny synthetic trials,
 * and the coordinator's own overhead (sampling, storing, scheduling, exporting) as a share of training time.
 * Scaling needs idle cores: the load average is printed because other processes on the machine distort it.
 * `--trials demo` trains the demo's candidates instead (campaigns/demo-fmnist.json: ResNet-20 at a quarter of the FLOPs on
 * 7.5% of Fashion-MNIST, batch 16), each for `--steps` steps (default 133: the demo's first rung, half an epoch).
 * Usage: node --import tsx bench/campaign.ts [--workers 1,2] [--samples 12] [--images 256] [--epochs 1] [--backend wasm]
 *        [--trials tiny|demo] [--steps 133]
 */
import { rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCampaign } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import type { TrainSettings } from '../src/training/types.js';
import { tinySettings, writeTinySpace, tempDir } from '../test/campaign-helpers.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    samples: { type: 'string', default: '16' },
    images: { type: 'string', default: '1024' },
    epochs: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'wasm' },
    trials: { type: 'string', default: 'tiny' },
    steps: { type: 'string', default: '133' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const samples = Number(values.samples);
const demo = values.trials === 'demo';
const backend = values.backend as TrainSettings['backend'];
// The demo's training settings (campaigns/demo-fmnist.json), cut to --steps steps per candidate.
const demoSettings: TrainSettings = {
  data: { name: 'fashion-mnist', subset: 0.075, valFraction: 0.05, testSubset: 0.05, augment: false },
  epochs: 2, steps: Number(values.steps), batchSize: 16, lr: 0.03, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  warmupEpochs: 0, labelSmoothing: 0, backend,
};
const settings: TrainSettings = demo ? demoSettings : { ...tinySettings(Number(values.images), Number(values.epochs)), backend };

console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(2)}; backend ${settings.backend}`);
console.log(demo
  ? `trials: ${samples} demo candidates (spaces/resnet20-fmnist-25.json, 7.5% of Fashion-MNIST, batch 16), ${settings.steps} steps each`
  : `trials: ${samples} tiny resnet20 candidates (8x8x1, 10-40% width), ${settings.data.samples} synthetic images, ${settings.epochs} epoch(s)`);
const root = tempDir('bench-campaign');
const space = demo ? 'spaces/resnet20-fmnist-25.json' : writeTinySpace(root);
let base = 0;
for (const workers of workerCounts) {
  const out = join(root, `w${workers}`);
  const prepared = prepareCampaign({ spacePath: space, outDir: out, samples, seed: 1, settings, maxAttempts: 1 });
  const cpu0 = process.cpuUsage();
  const s = await runCampaign(prepared.dir, { workers, progress: { quiet: true } });
  const cpu = process.cpuUsage(cpu0);
  // Cores this process kept busy on average: near the worker count when the pool runs in parallel, lower when the
  // machine's other load takes the cores away.
  const cores = (cpu.user + cpu.system) / 1e6 / s.wallSeconds;
  const perHour = (s.trialsRun / s.wallSeconds) * 3600;
  base ||= perHour;
  const overhead = (prepared.setupSeconds + s.coordinatorSeconds) / s.trialSeconds;
  const busy = s.trialSeconds / (s.wallSeconds * s.slots);
  console.log(
    `workers ${workers}: ${s.counts.complete}/${s.trialsRun} complete in ${s.wallSeconds.toFixed(1)}s wall -> ` +
      `${perHour.toFixed(0)} candidates/hour (${(perHour / base).toFixed(2)}x); mean trial ${(s.trialSeconds / s.trialsRun).toFixed(2)}s; ` +
      `coordinator ${(1000 * prepared.setupSeconds).toFixed(0)}ms sampling+store setup + ${((1000 * s.coordinatorSeconds) / s.trialsRun).toFixed(1)}ms per trial ` +
      `= ${(100 * overhead).toFixed(2)}% of training; ` +
      `workers busy ${(100 * busy).toFixed(1)}% of wall (the rest: thread start, backend and data load, tail); ` +
      `CPU ${cores.toFixed(2)} cores on average`,
  );
}
rmSync(root, { recursive: true, force: true });
