/**
 * Are the torch engine's gradients right under every oneDNN ISA level? For the net of the one-channel equivalence
 * test (resnet20 at 10x10x1, widths in multiples of 8), first-step gradients of the torch engine, the tfjs engine and
 * PyTorch (the same oneDNN, float32) are compared with PyTorch in float64 at each ISA level this CPU can run
 * (ONEDNN_MAX_CPU_ISA), and the 20-step loss trajectories of tfjs and torch are set beside torch against itself from
 * initial weights perturbed by one float32 ulp: how much training amplifies rounding on this net.
 * `npm run bench -- isa-gradients`; `DNNL_VERBOSE=1` in the environment prints the primitives each level runs.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import type { NetSpec } from '../src/nets/types.js';
import { selectBackend } from '../src/training/backends/select.js';
import type { WeightSet } from '../src/training/engine.js';
import { tfjsEngine } from '../src/training/engines/tfjs.js';
import { plan, startTorch } from '../src/training/engines/torch.js';
import { makeRng } from '../src/util/rng.js';
import { batchOf, isaLevels, relMax } from '../test/torch-equivalence.js';
import { torchPython } from './lib/common.js';

const SMOOTHING = 0.1;
const OPT = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };

function net(): { spec: NetSpec; widths: number[] } {
  const spec = buildNet({ family: 'resnet20', input: [10, 10, 1], classes: 4 });
  const widths = keepWidths(spec, 0.5);
  widths[2] = 24;
  return { spec, widths };
}

interface ChildResult {
  isa: string;
  params: { name: string; tfjs: number; torch: number; pytorch32: number; torchVsPytorch32: number }[];
  loss: { tfjs: number; torch: number; pytorch32: number; pytorch64: number };
  /** Per step: |loss_torch - loss_tfjs| / loss_tfjs, and |loss_torch(w) - loss_torch(w + 1 ulp)| / loss. */
  trajectory: { engines: number[]; ulp: number[] };
}

async function child(isa: string): Promise<ChildResult> {
  const { spec, widths } = net();
  const tfjs = tfjsEngine(await selectBackend('cpu'));
  const t = startTorch(1, { cpuOnly: true });
  if (!t.ok) throw new Error(t.detail);
  const [a, b] = [await tfjs.build(spec, widths, 9, OPT), await t.engine.build(spec, widths, 9, OPT)];
  const batch = batchOf(spec, 16, 100);
  const ce = { kind: 'cross-entropy' as const, labelSmoothing: SMOOTHING };
  const [ga, gb] = [await a.gradients(batch, ce), await b.gradients(batch, ce)];
  const weights = await a.readWeights();
  const dump = {
    plan: plan(spec, widths),
    input: spec.ref.input,
    smoothing: SMOOTHING,
    x: Array.from(batch.x),
    labels: Array.from(batch.labels!),
    weights: Object.fromEntries([...weights].filter(([n]) => ga.grads.has(n)).map(([n, w]) => [n, { shape: w.shape, data: Array.from(w.data) }])),
  };
  if (process.env.ISA_DUMP) writeFileSync(process.env.ISA_DUMP, JSON.stringify({ ...dump, tfjs: Object.fromEntries([...ga.grads].map(([n, g]) => [n, Array.from(g.data)])), torch: Object.fromEntries([...gb.grads].map(([n, g]) => [n, Array.from(g.data)])) }));
  const py = torchPython();
  if (!py) throw new Error('no python with torch (apt-get install python3-torch)');
  const r = spawnSync(py, ['bench/lib/plan_gradients.py'], { input: JSON.stringify(dump), maxBuffer: 1 << 28, env: process.env });
  if (r.status !== 0) throw new Error(String(r.stderr));
  const out = JSON.parse(String(r.stdout)) as Record<'float32' | 'float64', { loss: number; grads: Record<string, number[]> }>;
  const params = [...ga.grads.keys()].map((name) => {
    const f64 = out.float64.grads[name];
    const p32 = out.float32.grads[name];
    return {
      name,
      tfjs: relMax(f64, ga.grads.get(name)!.data),
      torch: relMax(f64, gb.grads.get(name)!.data),
      pytorch32: relMax(f64, p32),
      torchVsPytorch32: relMax(p32, gb.grads.get(name)!.data),
    };
  });
  // Trajectories: the equivalence test's 20 steps, and torch against itself from weights one ulp apart.
  const c = await t.engine.build(spec, widths, 9, OPT);
  const perturbed: WeightSet = new Map();
  const rng = makeRng(1, 'ulp');
  for (const [n, w] of weights) perturbed.set(n, { shape: w.shape, data: w.data.map((v) => v * (1 + (rng() < 0.5 ? -1 : 1) * 2 ** -23)) });
  await c.writeWeights(perturbed);
  const trajectory = { engines: [] as number[], ulp: [] as number[] };
  for (let step = 0; step < 20; step++) {
    const bt = batchOf(spec, 16, 100 + step);
    const [ra, rb, rc] = [await a.trainStep(bt, 0.01, SMOOTHING), await b.trainStep(bt, 0.01, SMOOTHING), await c.trainStep(bt, 0.01, SMOOTHING)];
    trajectory.engines.push(Math.abs(rb.loss - ra.loss) / ra.loss);
    trajectory.ulp.push(Math.abs(rc.loss - rb.loss) / rb.loss);
  }
  return { isa, params, loss: { tfjs: ga.loss, torch: gb.loss, pytorch32: out.float32.loss, pytorch64: out.float64.loss }, trajectory };
}

const e = (x: number) => x.toExponential(1);

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await child(process.argv[3])));
} else {
  console.log('first-step gradients, max |g - g64| / max |g64| per tensor against PyTorch float64 (worst tensor shown)');
  console.log('isa          tfjs32   torch32  pytorch32  torch-vs-pytorch32   worst tensor (torch)        traj. tfjs-torch  traj. torch+1ulp (max over 20 steps; step 12)');
  for (const isa of isaLevels()) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/isa-gradients.ts', '--child', isa], {
      env: { ...process.env, ONEDNN_MAX_CPU_ISA: isa, DNNL_MAX_CPU_ISA: isa },
      maxBuffer: 1 << 28,
    });
    if (r.status !== 0) {
      console.log(`${isa}: failed: ${String(r.stderr).split('\n').slice(-5).join(' ')}`);
      continue;
    }
    const res = JSON.parse(String(r.stdout).trim().split('\n').pop()!) as ChildResult;
    const worst = (k: 'tfjs' | 'torch' | 'pytorch32' | 'torchVsPytorch32') => Math.max(...res.params.map((p) => p[k]));
    const wt = res.params.reduce((m, p) => (p.torch > m.torch ? p : m));
    const tr = res.trajectory;
    console.log(
      `${isa.padEnd(12)} ${e(worst('tfjs')).padEnd(8)} ${e(worst('torch')).padEnd(8)} ${e(worst('pytorch32')).padEnd(10)} ${e(worst('torchVsPytorch32')).padEnd(20)} ${wt.name.padEnd(27)} ${(e(Math.max(...tr.engines)) + '; ' + e(tr.engines[12])).padEnd(17)} ${e(Math.max(...tr.ulp))}; ${e(tr.ulp[12])}`,
    );
    if (process.env.ISA_DETAIL) for (const p of res.params) console.log(`   ${p.name.padEnd(34)} ${e(p.tfjs)} ${e(p.torch)} ${e(p.pytorch32)} ${e(p.torchVsPytorch32)}`);
  }
}
