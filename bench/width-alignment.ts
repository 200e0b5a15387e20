/**
 * Training speed per FLOP of sampled subnetworks whose widths are arbitrary (quantum 1) against widths in multiples
 * of 8 (quantum 8), both drawn from the demo's space (spaces/resnet20-fmnist-25.json: ResNet-20, a quarter of its
 * FLOPs), on the torch engine and on PyTorch with the same widths, one thread each, batch 16 (the demo's).
 * libtorch's CPU convolutions (oneDNN) run channel counts in blocks of 8 or 16, so FLOPs alone under-predict the
 * time of odd widths; this measures by how much, and shows that PyTorch sees the same. The engine runs as it chooses
 * (channels-last, arbitrary widths padded with zero channels to multiples of 8) and forced to NCHW.
 * Usage: node --import tsx bench/width-alignment.ts [--configs N] [--steps S]
 */
import { spawnSync } from 'node:child_process';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { startTorch } from '../src/training/engines/torch.js';
import type { WidthConfig } from '../src/nets/types.js';
import type { Engine } from '../src/training/engine.js';
import { median, torchPython } from './lib/common.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CONFIGS = arg('--configs', 8);
const STEPS = arg('--steps', 20);
const BATCH = 16;
const OPTIMIZER = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };

const loaded = loadSpace('spaces/resnet20-fmnist-25.json');
const [h, w, c] = loaded.net.ref.input;
function sample(quantum: number): { widths: WidthConfig; flops: number }[] {
  const file = { ...loaded.file, samplers: loaded.file.samplers.map((s) => ({ ...s, quantum })) };
  return sampleSpace(compileSpace({ ...loaded, file }), CONFIGS, 1).configs.map((s) => ({ widths: s.widths, flops: s.complexity.flops }));
}

// The engine as it chooses (channels-last, arbitrary widths padded to multiples of 8) and forced to NCHW.
const started = startTorch(1, { cpuOnly: true });
const nchw = startTorch(1, { cpuOnly: true, memoryFormat: 'nchw' });
if (!started.ok || !nchw.ok) {
  console.log(`torch: skipped (${started.detail})`);
  process.exit(0);
}
const torch = started;
const py = torchPython();
if (!py) console.log('pytorch: skipped (no python3 can import torch; install python3-torch)');
const batch = {
  x: Float32Array.from({ length: BATCH * h * w * c }, () => Math.random() * 2 - 1),
  labels: Int32Array.from({ length: BATCH }, (_, i) => i % loaded.net.ref.classes),
  size: BATCH,
};

async function torchSeconds(engine: Engine, widths: WidthConfig): Promise<number> {
  const net = await engine.build(loaded.net, widths, 0, OPTIMIZER);
  const times: number[] = [];
  for (let i = 0; i < STEPS + 3; i++) {
    const t0 = performance.now();
    await net.trainStep(batch, 0.05, 0);
    if (i >= 3) times.push((performance.now() - t0) / 1000);
  }
  net.dispose();
  return median(times);
}

function pytorchSeconds(widths: WidthConfig): number {
  const r = spawnSync(
    py!,
    ['bench/torch_resnet.py', '--depth', '20', '--widths', widths.join(','), '--input', `${h}x${w}x${c}`, '--batch', String(BATCH),
      '--steps', String(STEPS), '--threads', '1'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`pytorch benchmark failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).medianStepSeconds;
}

console.log(`torch: ${torch.detail}; ${CONFIGS} configurations per quantum, batch ${BATCH}, median of ${STEPS} steps each`);
const sets = [1, 8].map((quantum) => ({ quantum, configs: sample(quantum), torch: 0, nchw: 0, pytorch: 0, flops: 0 }));
// Interleaved, so load from other work falls on both quanta alike.
for (let k = 0; k < CONFIGS; k++) {
  for (const set of sets) {
    const cfg = set.configs[k];
    set.flops += cfg.flops;
    set.torch += await torchSeconds(torch.engine, cfg.widths);
    set.nchw += await torchSeconds(nchw.engine, cfg.widths);
    if (py) set.pytorch += pytorchSeconds(cfg.widths);
  }
}
for (const set of sets) {
  const images = CONFIGS * BATCH;
  // Training costs about three forward passes (forward, input gradients, weight gradients).
  const gflops = (seconds: number) => ((3 * set.flops * BATCH) / seconds / 1e9).toFixed(1);
  const line = [`quantum ${set.quantum}: mean ${(set.flops / CONFIGS / 1e6).toFixed(2)} MFLOPs`,
    `torch ${(images / set.torch).toFixed(0)} images/s (${gflops(set.torch)} GFLOP/s)`,
    `torch forced to NCHW ${(images / set.nchw).toFixed(0)} images/s (${gflops(set.nchw)} GFLOP/s)`];
  if (py) line.push(`pytorch ${(images / set.pytorch).toFixed(0)} images/s (${gflops(set.pytorch)} GFLOP/s)`);
  console.log(line.join(', '));
}
const [q1, q8] = sets;
const perFlop = (s: (typeof sets)[number], t: number) => s.flops / t;
console.log(`speed per FLOP, quantum 8 / quantum 1: torch ${(perFlop(q8, q8.torch) / perFlop(q1, q1.torch)).toFixed(2)}x` +
  `, torch forced to NCHW ${(perFlop(q8, q8.nchw) / perFlop(q1, q1.nchw)).toFixed(2)}x` +
  (py ? `, pytorch ${(perFlop(q8, q8.pytorch) / perFlop(q1, q1.pytorch)).toFixed(2)}x` : ''));
