/**
 * The torch engine equals tfjs step by step at every oneDNN ISA level this CPU can run: the machine's own (in this
 * process) and each lower level oneDNN can be capped at (ONEDNN_MAX_CPU_ISA, a child process each), so a kernel that
 * only one CPU generation takes is checked on every CI machine that has it. test/torch-equivalence.ts says how the
 * tolerance is derived and why steps whose ReLU masks differ are counted instead of compared.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { before, test } from 'node:test';
import { selectBackend } from '../src/training/backends/select.js';
import { tfjsEngine } from '../src/training/engines/tfjs.js';
import { startTorch, torchAddon } from '../src/training/engines/torch.js';
import { compareWithTorch, equivalenceNets, isaLevels, tfjsTrajectory, type Agreement, type Trajectory } from './torch-equivalence.js';

const { addon, problem } = torchAddon();
const skip = addon ? false : `torch addon not built: ${problem}`;

/** oneDNN's ISA caps below this CPU's best, lowest first (the best runs when nothing caps it). */
const lowerIsaLevels = () => isaLevels().slice(0, -1);

let trajectories: Trajectory[] = [];
before(async () => {
  if (!addon) return;
  const tfjs = tfjsEngine(await selectBackend('cpu'));
  for (const n of equivalenceNets()) trajectories.push(await tfjsTrajectory(tfjs, n.name, n.spec, n.widths, n.opt));
});

function check(a: Agreement, where: string): void {
  const at = `${a.name} (${where}): ${JSON.stringify(a)}`;
  assert.ok(a.excused <= a.steps / 2, `ReLU masks differed at ${a.excused} of ${a.steps} steps: ${at}`);
  assert.ok(a.grad <= 1, `gradients differ beyond float32 rounding: ${at}`);
  assert.ok(a.pre <= a.tolerance, `ReLU inputs differ beyond float32 rounding: ${at}`);
  assert.ok(a.loss <= 1e-5, `losses differ: ${at}`);
  assert.ok(a.running <= 1e-5, `BN running statistics differ: ${at}`);
}

test("per-step gradients equal tfjs's within float32 rounding at this CPU's own ISA", { skip }, async () => {
  const t = startTorch(1, { cpuOnly: true });
  assert.ok(t.ok);
  for (const tr of trajectories) check(await compareWithTorch(t.engine, tr), 'own ISA');
});

test('per-step gradients equal tfjs\'s within float32 rounding at every lower ISA level oneDNN can be capped at', { skip }, () => {
  const levels = lowerIsaLevels();
  assert.ok(levels.length > 0, 'this CPU has no ISA level below its own');
  const file = join(mkdtempSync(join(tmpdir(), 'prunespace-isa-')), 'trajectories.bin');
  writeFileSync(file, serialize(trajectories));
  for (const isa of levels) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/torch-isa-child.ts', file], {
      env: { ...process.env, ONEDNN_MAX_CPU_ISA: isa },
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    assert.equal(r.status, 0, `${isa}: ${r.stderr}`);
    const results = JSON.parse(r.stdout.trim().split('\n').pop()!) as Agreement[];
    assert.equal(results.length, trajectories.length);
    for (const a of results) check(a, `ONEDNN_MAX_CPU_ISA=${isa}`);
  }
});
