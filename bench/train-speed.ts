/**
 * Training images per second of resnet20 (keep 1.0 and 0.5, 28x28x1, batch 128) on every tfjs backend that starts,
 * on the torch engine (libtorch addon, one intra-op thread) and by PyTorch on one thread where python3 can import
 * torch, with the ratios. Torch and PyTorch alternate for --rounds rounds (the median of each is reported), so load
 * from other work on a shared machine falls on both alike.
 * A step is forward, backward, L2 decay and the momentum update on a fixed random batch (no data pipeline, as in
 * the PyTorch script). Median step of several after warm-up; the cpu backend gets one timed step of a batch of 8
 * (one step of 128 takes many minutes there: its Conv2DBackpropFilter is a scalar loop).
 * Usage: node --import tsx bench/train-speed.ts [--steps N] [--rounds R]
 */
import { spawnSync } from 'node:child_process';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { selectBackend, type BackendName } from '../src/training/backends/select.js';
import type { EngineNet } from '../src/training/engine.js';
import { TfjsNet } from '../src/training/engines/tfjs.js';
import { startTorch, type TorchNet } from '../src/training/engines/torch.js';
import type { LoopSettings } from '../src/training/train.js';
import { median, torchPython } from './lib/common.js';

const BATCH = 128;
const INPUT: [number, number, number] = [28, 28, 1];
const KEEPS = [1.0, 0.5];
const stepsArg = process.argv.indexOf('--steps');
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 8;
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const SETTINGS: LoopSettings = {
  epochs: 1,
  batchSize: BATCH,
  lr: 0.1,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  warmupEpochs: 0,
  labelSmoothing: 0,
};

const spec = buildNet({ family: 'resnet20', input: INPUT, classes: 10 });

const OPTIMIZER = { momentum: SETTINGS.momentum, nesterov: false, weightDecay: SETTINGS.weightDecay };

/** Images per second of an engine's training steps (one call per step, as the training loop makes them). */
async function engineSpeed(net: EngineNet, warmup: number, steps: number, batchSize: number): Promise<number> {
  const batch = {
    x: Float32Array.from({ length: batchSize * INPUT[0] * INPUT[1] * INPUT[2] }, () => Math.random() * 2 - 1),
    labels: Int32Array.from({ length: batchSize }, (_, i) => i % 10),
    size: batchSize,
  };
  const times: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    await net.trainStep(batch, SETTINGS.lr, SETTINGS.labelSmoothing);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  net.dispose();
  return batchSize / (median(times) / 1000);
}

function torchSpeed(py: string, keep: number, channelsLast: boolean): number {
  const r = spawnSync(
    py,
    ['bench/torch_resnet.py', '--depth', '20', '--widths', keepWidths(spec, keep).join(','), '--input', INPUT.join('x'),
      '--batch', String(BATCH), '--steps', String(STEPS), '--threads', '1', ...(channelsLast ? ['--channels-last'] : [])],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`torch benchmark failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).imagesPerSecond;
}

const rows: { backend: string; keep: number; imagesPerSecond: number }[] = [];
for (const name of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
  let chosen;
  try {
    chosen = await selectBackend(name);
  } catch (e) {
    console.log(`${name}: skipped (${(e as Error).message})`);
    continue;
  }
  console.log(`backend ${chosen.reason}`);
  for (const keep of KEEPS) {
    const [warmup, steps, batchSize] = name === 'cpu' ? [0, 1, 8] : [2, STEPS, BATCH];
    const ips = await engineSpeed(new TfjsNet(spec, keepWidths(spec, keep), 0, OPTIMIZER), warmup, steps, batchSize);
    rows.push({ backend: name, keep, imagesPerSecond: ips });
    console.log(`  resnet20 keep ${keep.toFixed(2)}: ${ips.toFixed(1)} images/s (batch ${batchSize}, median of ${steps} timed steps)`);
  }
}

const py = torchPython();
// The engine in its own choice of memory format (channels-last here: resnet20's widths at keep 1.0 and 0.5 are
// multiples of 8) and forced to NCHW; PyTorch as a plain script writes it (NCHW) and converted to channels-last.
const torch = startTorch(1, { cpuOnly: true, memoryFormat: 'auto' });
const torchNchw = startTorch(1, { cpuOnly: true, memoryFormat: 'nchw' });
if (!torch.ok) console.log(`torch: skipped (${torch.detail})`);
if (!py) console.log('pytorch: skipped (no python3 can import torch; install python3-torch)');
const runs = new Map<string, number[]>();
const record = (key: string, v: number) => runs.set(key, [...(runs.get(key) ?? []), v]);
if (torch.ok) console.log(`torch: ${torch.detail}`);
for (let round = 0; round < ROUNDS; round++) {
  for (const keep of KEEPS) {
    if (torch.ok && torchNchw.ok) {
      const net = await torch.engine.build(spec, keepWidths(spec, keep), 0, OPTIMIZER);
      if (round === 0) console.log(`torch engine keep ${keep.toFixed(2)}: ${(net as TorchNet).memoryFormat()}`);
      record(`torch ${keep}`, await engineSpeed(net, 2, STEPS, BATCH));
      record(`torch-nchw ${keep}`, await engineSpeed(await torchNchw.engine.build(spec, keepWidths(spec, keep), 0, OPTIMIZER), 2, STEPS, BATCH));
    }
    if (py) {
      record(`pytorch ${keep}`, torchSpeed(py, keep, false));
      record(`pytorch-cl ${keep}`, torchSpeed(py, keep, true));
    }
  }
}
const each = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
for (const keep of KEEPS) {
  const wasm = rows.find((r) => r.backend === 'wasm' && r.keep === keep);
  const pt = runs.get(`pytorch ${keep}`);
  const ptCl = runs.get(`pytorch-cl ${keep}`);
  if (pt) {
    const ratio = wasm ? `, wasm/pytorch = ${(wasm.imagesPerSecond / median(pt)).toFixed(2)}x` : '';
    console.log(`pytorch (1 thread) resnet20 keep ${keep.toFixed(2)}: ${median(pt).toFixed(1)} images/s (rounds: ${each(pt)})${ratio}`);
  }
  if (ptCl) console.log(`pytorch channels-last (1 thread) resnet20 keep ${keep.toFixed(2)}: ${median(ptCl).toFixed(1)} images/s (rounds: ${each(ptCl)})`);
  for (const [key, label] of [['torch', 'torch engine'], ['torch-nchw', 'torch engine, NCHW forced']]) {
    const t = runs.get(`${key} ${keep}`);
    if (!t) continue;
    const ratio = pt ? `, torch/pytorch = ${(median(t) / median(pt)).toFixed(2)}x` : '';
    const ratioCl = ptCl ? `, against pytorch channels-last ${(median(t) / median(ptCl)).toFixed(2)}x` : '';
    console.log(`${label} (1 thread) resnet20 keep ${keep.toFixed(2)}: ${median(t).toFixed(1)} images/s (rounds: ${each(t)})${ratio}${ratioCl}`);
  }
}
