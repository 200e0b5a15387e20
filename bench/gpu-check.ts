/**
 * The torch engine on a CUDA GPU, in one table: equivalence with the CPU engine (same initial weights, weights round
 * trip, gradients and five training steps within tolerance), training images per second against PyTorch on the same
 * GPU at batch 128 and 512, and campaign throughput with 1, 4 and 8 trials at once on GPU 0. Run by bench/gpu-check.sh;
 * --cpu runs every part on the CPU with small sizes (the check of the check on a machine without a GPU).
 * Usage: node --import tsx bench/gpu-check.ts [--cpu]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import type { EngineBatch, EngineNet, WeightSet } from '../src/training/engine.js';
import { startTorch } from '../src/training/engines/torch.js';
import { makeRng } from '../src/util/rng.js';
import { median, torchPython } from './lib/common.js';

const CPU = process.argv.includes('--cpu');
const OPT = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };
const BATCHES = CPU ? [16] : [128, 512];
const TRIALS_AT_ONCE = CPU ? [1, 2] : [1, 4, 8];
const STEPS = CPU ? 2 : 10;
const rows: [string, string, string][] = [];
let failed = false;

function fail(message: string): never {
  console.error(`gpu-check: ${message}`);
  process.exit(2);
}

const reference = startTorch(1, { cpuOnly: true });
const tested = startTorch(1, { cpuOnly: CPU });
if (!reference.ok || !tested.ok) fail(`the torch engine does not start: ${reference.detail}`);
if (!CPU && tested.engine.device === 'cpu') fail(`no CUDA GPU visible to libtorch (${tested.detail}); --cpu checks the rest on the CPU`);
console.log(`engine: ${tested.detail}`);

function batchOf(input: readonly number[], classes: number, size: number, seed: number): EngineBatch {
  const rng = makeRng(seed, 'gpu-check');
  return {
    x: Float32Array.from({ length: size * input[0] * input[1] * input[2] }, () => rng() * 2 - 1),
    labels: Int32Array.from({ length: size }, () => Math.floor(rng() * classes)),
    size,
  };
}

/** max |a - b| / max |a| over every tensor of two weight sets. */
function relDiff(a: WeightSet, b: WeightSet): number {
  let worst = 0;
  for (const [name, wa] of a) {
    const wb = b.get(name);
    if (!wb || wb.data.length !== wa.data.length) return Infinity;
    let scale = 1e-6;
    let d = 0;
    for (let i = 0; i < wa.data.length; i++) {
      scale = Math.max(scale, Math.abs(wa.data[i]));
      d = Math.max(d, Math.abs(wa.data[i] - wb.data[i]));
    }
    worst = Math.max(worst, d / scale);
  }
  return worst;
}

function check(name: string, value: number, limit: number): void {
  const ok = value <= limit;
  if (!ok) failed = true;
  rows.push([name, value.toExponential(2), `${ok ? 'ok' : 'FAIL'} (limit ${limit})`]);
}

// 1. Equivalence with the CPU engine.
{
  const spec = buildNet({ family: 'resnet20', input: [16, 16, 3], classes: 10 });
  const widths = keepWidths(spec, 0.5);
  const a = await reference.engine.build(spec, widths, 1, OPT);
  const b = await tested.engine.build(spec, widths, 1, OPT);
  check('initial weights, CPU vs device (rel)', relDiff(await a.readWeights(), await b.readWeights()), 0);
  const w = await b.readWeights();
  await b.writeWeights(w);
  check('weights round trip on the device (rel)', relDiff(w, await b.readWeights()), 0);
  const batch = batchOf(spec.ref.input, 10, 32, 2);
  const [ga, gb] = [await a.gradients(batch, { kind: 'cross-entropy' }), await b.gradients(batch, { kind: 'cross-entropy' })];
  check('loss gradients, CPU vs device (rel)', relDiff(ga.grads, gb.grads), 1e-3);
  let lossDiff = 0;
  for (let i = 0; i < 5; i++) {
    const [la, lb] = [await a.trainStep(batch, 0.05, 0), await b.trainStep(batch, 0.05, 0)];
    lossDiff = Math.max(lossDiff, Math.abs(la.loss - lb.loss) / Math.abs(la.loss));
  }
  check('5 training steps: loss, CPU vs device (rel)', lossDiff, 1e-3);
  check('5 training steps: weights, CPU vs device (rel)', relDiff(await a.readWeights(), await b.readWeights()), 1e-2);
  a.dispose();
  b.dispose();
}

// 2. Training speed against PyTorch on the same device: resnet20, 28x28x1, full width.
const py = torchPython();
for (const size of BATCHES) {
  const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
  const widths = keepWidths(spec, 1);
  const net: EngineNet = await tested.engine.build(spec, widths, 1, OPT);
  const batch = batchOf(spec.ref.input, 10, size, 3);
  const times: number[] = [];
  for (let i = 0; i < STEPS + 2; i++) {
    const t = performance.now();
    await net.trainStep(batch, 0.05, 0); // returns the loss: the step has finished on the device
    if (i >= 2) times.push(performance.now() - t);
  }
  net.dispose();
  const ours = size / (median(times) / 1000);
  let theirs = 'no python with torch';
  if (py) {
    const r = spawnSync(py, ['bench/torch_resnet.py', '--depth', '20', '--widths', widths.join(','), '--input', '28x28x1', '--batch', String(size),
      '--steps', String(STEPS), '--threads', '1', '--device', CPU ? 'cpu' : 'cuda'], { encoding: 'utf8' });
    theirs = r.status === 0 ? String(Math.round(JSON.parse(r.stdout).imagesPerSecond)) : `PyTorch failed: ${r.stderr.trim().split('\n').pop()}`;
  }
  const ratio = py && /^\d+$/.test(theirs) ? ` (${(ours / Number(theirs)).toFixed(2)}x PyTorch)` : '';
  rows.push([`train images/s, batch ${size}: torch engine / PyTorch`, `${Math.round(ours)} / ${theirs}`, ratio.trim()]);
}

// 3. Campaign throughput: K trials at once on GPU 0, a tiny synthetic campaign of 2K trials.
for (const k of TRIALS_AT_ONCE) {
  const dir = mkdtempSync(join(tmpdir(), 'prunespace-gpu-check-'));
  const space = join(dir, 'space.json');
  writeFileSync(space, JSON.stringify({
    name: 'gpu-check', network: { family: 'resnet20', input: '28x28x1', classes: 10 },
    samplers: [{ select: { kinds: ['stage', 'inner'] }, keep: { min: 0.3, max: 1 }, distribution: 'uniform', quantum: 1 }],
    regime: { flops: { min: 0.05, max: 1 } },
  }));
  const trials = 2 * k;
  // K processes on GPU 0 (`--gpus 0,0,...`); without a GPU the same processes train on the CPU.
  const pool = ['--gpus', new Array(k).fill('0').join(',')];
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'search', space, '--out', join(dir, 'run'), '--samples', String(trials),
    '--no-reference', '--data', 'synthetic', '--synthetic-samples', CPU ? '128' : '2048', '--epochs', '1', '--batch', '128', '--backend', 'torch', ...pool],
    { encoding: 'utf8' });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) {
    failed = true;
    rows.push([`campaign, ${k} trial(s) at once`, 'failed', r.stderr.trim().split('\n').pop() ?? '']);
    continue;
  }
  const done = readFileSync(join(dir, 'run', 'trials.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { state: string });
  rows.push([`campaign, ${k} trial(s) at once: trials/min`, (done.filter((x) => x.state === 'complete').length / (seconds / 60)).toFixed(1), `${trials} trials in ${seconds.toFixed(0)} s, process start included`]);
}

console.log(`\n| check (${CPU ? 'CPU, small sizes' : 'CUDA'}) | value | result |\n|---|---|---|`);
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
process.exit(failed ? 1 : 0);
