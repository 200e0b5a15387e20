/**
 * Where a training step's time goes, op by op, on the torch engine and in PyTorch: resnet20 on 28x28x1 at batch 128,
 * one intra-op thread, keep 1.0 and 0.5. Both record with libtorch's legacy operator profiler (the engine through
 * the addon's profileStart, PyTorch through torch.autograd.profiler) and the table lists self CPU milliseconds per
 * step by op, largest difference first. The profiler adds its own overhead to both; the wall time and minor page
 * faults of the profiled steps are printed beside those of plain steps (bench/train-speed.ts's method). Read the
 * table only where the profiled step stays near the plain one: at keep 1.0 the engine's profiled steps took 2.3-2.6x
 * its plain ones and faulted in about 66,000 pages a step against 4,000-19,000 plain (PyTorch: 1.1-1.2x), a
 * distortion whose cause is not found.
 * Usage: node --import tsx bench/profile-step.ts [--steps N] [--keep K]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { startTorch, torchAddon } from '../src/training/engines/torch.js';
import { median, torchPython } from './lib/common.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const STEPS = arg('--steps', 6);
const KEEPS = process.argv.includes('--keep') ? [arg('--keep', 1)] : [1.0, 0.5];
const BATCH = 128;
const INPUT: [number, number, number] = [28, 28, 1];
const spec = buildNet({ family: 'resnet20', input: INPUT, classes: 10 });

interface TraceEvent { name: string; ph: string; ts: number; dur: number; tid: number | string }

/** Self time by op name (ms per step): each event's duration less that of the events nested directly inside it. */
function selfTimes(events: TraceEvent[], steps: number): Map<string, number> {
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    if (e.ph !== 'X') continue;
    const list = byThread.get(String(e.tid));
    if (list) list.push(e);
    else byThread.set(String(e.tid), [e]);
  }
  const self = new Map<string, number>();
  for (const list of byThread.values()) {
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack: { e: TraceEvent; child: number }[] = [];
    const close = (until: number) => {
      while (stack.length && stack[stack.length - 1].e.ts + stack[stack.length - 1].e.dur <= until) {
        const top = stack.pop()!;
        self.set(top.e.name, (self.get(top.e.name) ?? 0) + (top.e.dur - top.child) / 1000 / steps);
        if (stack.length) stack[stack.length - 1].child += top.e.dur;
      }
    };
    for (const e of list) {
      close(e.ts);
      stack.push({ e, child: 0 });
    }
    close(Infinity);
  }
  return self;
}

interface Profile {
  self: Map<string, number>;
  profiledMs: number;
  medianMs: number;
  /** Minor page faults per step, plain and profiled: fresh pages the allocator maps in. */
  faults: number;
  profiledFaults: number;
}

async function engineProfile(keep: number): Promise<Profile> {
  const torch = startTorch(1, { cpuOnly: true });
  if (!torch.ok) throw new Error(torch.detail);
  const net = await torch.engine.build(spec, keepWidths(spec, keep), 0, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
  const batch = {
    x: Float32Array.from({ length: BATCH * INPUT[0] * INPUT[1] * INPUT[2] }, () => Math.random() * 2 - 1),
    labels: Int32Array.from({ length: BATCH }, (_, i) => i % 10),
    size: BATCH,
  };
  const times: number[] = [];
  let plainFaults = 0;
  for (let i = 0; i < 2 + STEPS; i++) {
    const f = process.resourceUsage().minorPageFault;
    const t0 = performance.now();
    await net.trainStep(batch, 0.1, 0);
    if (i >= 2) {
      times.push(performance.now() - t0);
      plainFaults += (process.resourceUsage().minorPageFault - f) / STEPS;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'prunespace-profile-'));
  const trace = join(dir, 'trace.json');
  const addon = torchAddon().addon!;
  addon.profileStart(trace);
  const f0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await net.trainStep(batch, 0.1, 0);
  const profiledMs = (performance.now() - t0) / STEPS;
  const faults = (process.resourceUsage().minorPageFault - f0) / STEPS;
  addon.profileStop();
  net.dispose();
  const events = JSON.parse(readFileSync(trace, 'utf8')) as TraceEvent[];
  rmSync(dir, { recursive: true, force: true });
  return { self: selfTimes(events, STEPS), profiledMs, medianMs: median(times), faults: plainFaults, profiledFaults: faults };
}

function pytorchProfile(py: string, keep: number): Profile {
  const r = spawnSync(py, ['bench/torch_resnet.py', '--depth', '20', '--widths', keepWidths(spec, keep).join(','), '--input', INPUT.join('x'),
    '--batch', String(BATCH), '--steps', String(STEPS), '--threads', '1', '--profile'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_resnet.py failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { profile: Record<string, number>; profiledStepMs: number; medianStepSeconds: number; faultsPerStep: number; profiledFaultsPerStep: number };
  return { self: new Map(Object.entries(out.profile)), profiledMs: out.profiledStepMs, medianMs: 1000 * out.medianStepSeconds, faults: out.faultsPerStep, profiledFaults: out.profiledFaultsPerStep };
}

const py = torchPython();
if (!torchAddon().addon) {
  console.log(`profile-step: skipped (torch addon not built: ${torchAddon().problem})`);
  process.exit(0);
}
for (const keep of KEEPS) {
  const ours = await engineProfile(keep);
  const theirs = py ? pytorchProfile(py, keep) : undefined;
  console.log(`\nresnet20 keep ${keep.toFixed(2)}, batch ${BATCH}, 1 thread, ${STEPS} profiled steps`);
  const line = (p: Profile) => `median step ${p.medianMs.toFixed(1)} ms (${p.faults.toFixed(0)} page faults), profiled ${p.profiledMs.toFixed(1)} ms (${p.profiledFaults.toFixed(0)} faults)`;
  console.log(`torch engine: ${line(ours)}`);
  console.log(theirs ? `PyTorch:      ${line(theirs)}` : 'PyTorch: skipped (no python3 can import torch)');
  const names = [...new Set([...ours.self.keys(), ...(theirs?.self.keys() ?? [])])];
  const rows = names
    .map((n) => ({ n, a: ours.self.get(n) ?? 0, b: theirs?.self.get(n) ?? 0 }))
    .filter((r) => Math.max(r.a, r.b) >= 0.2)
    .sort((x, y) => Math.abs(y.a - y.b) - Math.abs(x.a - x.b));
  const sum = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  console.log(`${'self ms/step'.padEnd(48)} ${'engine'.padStart(8)} ${'PyTorch'.padStart(8)} ${'diff'.padStart(8)}`);
  for (const r of rows) console.log(`${r.n.slice(0, 48).padEnd(48)} ${r.a.toFixed(2).padStart(8)} ${r.b.toFixed(2).padStart(8)} ${(r.a - r.b).toFixed(2).padStart(8)}`);
  console.log(`${'all ops'.padEnd(48)} ${sum(ours.self).toFixed(2).padStart(8)} ${(theirs ? sum(theirs.self) : 0).toFixed(2).padStart(8)}`);
}
