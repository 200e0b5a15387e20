/**
 * Pruning during training (`train --prune-at`): pruning at initialisation equals `prune` of the saved initial net then
 * training; the learning-rate schedule runs on through pruning; iterative steps shrink front-loaded to the one-shot
 * widths; the saved child is a stock tfjs model; bad input writes nothing. Tiny nets on synthetic data.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { trainWithPruning, type EarlyPruneRequest } from '../src/pruning/during-training.js';
import { prune } from '../src/pruning/prune.js';
import { removedShare, stepWidths } from '../src/pruning/schedule.js';
import { selectBackend } from '../src/training/backends/select.js';
import type { Engine, WeightSet } from '../src/training/engine.js';
import { readLayersWeights } from '../src/training/engines/layers-weights.js';
import { selectEngine } from '../src/training/engines/select.js';
import { torchAddon } from '../src/training/engines/torch.js';
import { checkKept } from '../src/training/inherit.js';
import { fileLoadHandler, loadTrained, saveNet } from '../src/training/save.js';
import { runTrial } from '../src/training/trial.js';
import type { TrainSettings } from '../src/training/types.js';
import { tinySettings } from './campaign-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'prunespace-early-'));
const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 });
const full = baseWidths(spec);

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const settings = (backend: TrainSettings['backend'], epochs: number): TrainSettings => {
  const tiny = tinySettings(96, epochs);
  return { ...tiny, data: { ...tiny.data, augment: true }, warmupEpochs: 1, backend };
};

async function savedWeights(dir: string): Promise<WeightSet> {
  const { model, metadata } = await loadTrained(dir);
  try {
    return readLayersWeights(model, buildNet(metadata.net));
  } finally {
    model.dispose();
  }
}

function assertSameWeights(a: WeightSet, b: WeightSet): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assert.deepEqual(u.shape, t.shape, name);
    assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)), `${name} differs`);
  }
}

const request = (engine: Engine, over: Partial<EarlyPruneRequest>): EarlyPruneRequest => ({
  spec,
  target: { keep: 0.5 },
  criterion: 'snip',
  at: 0,
  steps: 1,
  every: 1,
  combine: 'sum',
  scoreBatches: 2,
  finetuneEpochs: 0,
  finetuneLr: 0.01,
  settings: settings(engine.name as TrainSettings['backend'], 2),
  seed: 7,
  engine,
  ...over,
});

test('the cubic schedule: shares 1 - (1 - k/S)^3, widths never grow, first step removes the most, last step lands on the target', () => {
  assert.equal(removedShare(0, 3), 0);
  assert.ok(Math.abs(removedShare(1, 3) - 19 / 27) < 1e-12);
  assert.equal(removedShare(3, 3), 1);
  const to = [8, 16, 1, 5];
  const steps = stepWidths([16, 32, 64, 5], to, 4);
  assert.deepEqual(steps[3], to);
  steps.forEach((w, k) => w.forEach((x, g) => assert.ok(x <= (k ? steps[k - 1][g] : [16, 32, 64, 5][g]) && x >= to[g])));
  const perStep = steps.map((w, k) => (k ? steps[k - 1] : [16, 32, 64, 5]).reduce((s, x) => s + x, 0) - w.reduce((s, x) => s + x, 0));
  for (let k = 1; k < perStep.length; k++) assert.ok(perStep[k - 1] >= perStep[k], `step ${k} removes ${perStep[k]} after ${perStep[k - 1]}`);
  assert.deepEqual(stepWidths([16], [4], 1), [[4]]);
});

async function pruneAtInitEqualsPrune(engine: Engine): Promise<void> {
  // Path A: prune the saved initialised net with `prune`, fine-tuning with the run's settings.
  const parentDir = join(root, `init-${engine.name}`);
  const init = await engine.build(spec, full, 7, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
  try {
    await saveNet(init, parentDir, { net: spec.ref, widths: full, groups: spec.groups.map((g) => g.name), complexity: complexity(spec, full), metrics: {}, seed: 7, savedAt: 'now' });
  } finally {
    init.dispose();
  }
  const s = settings(engine.name as TrainSettings['backend'], 2);
  const viaPrune = join(root, `via-prune-${engine.name}`);
  const a = await prune({ parentDir, criterion: 'snip', target: { keep: 0.5 }, outDir: viaPrune, combine: 'sum', scoreBatches: 2, seed: 7, settings: s, engine, engineName: engine.name });
  // Path B: train --prune-at 0.
  const during = join(root, `during-${engine.name}`);
  const b = await trainWithPruning(request(engine, { saveDir: during }));
  assert.equal(b.status, 'complete', b.error);
  assert.deepEqual(b.widths, a.widths);
  assert.deepEqual(b.kept, a.kept);
  assert.equal(b.testError, a.metrics.testError);
  assertSameWeights(await savedWeights(during), await savedWeights(viaPrune));
}

test('pruning at initialisation equals prune of the saved initial net followed by training (bit for bit, wasm)', async () => {
  const { engine } = await selectEngine('wasm');
  await pruneAtInitEqualsPrune(engine);
});

test('pruning at initialisation equals prune then training on the torch engine too', { skip: torchAddon().addon ? false : 'torch addon not built' }, async () => {
  const { engine } = await selectEngine('torch', { threads: 1 });
  await pruneAtInitEqualsPrune(engine);
});

test('pruning after an epoch keeps the learning-rate schedule and step count of an unpruned run', async () => {
  const { engine } = await selectEngine('wasm');
  const s = settings('wasm', 3);
  const plain = await runTrial({ net: spec.ref, widths: full, settings: s, seed: 7 });
  const r = await trainWithPruning(request(engine, { at: 1, criterion: 'l1', settings: s }));
  assert.equal(r.status, 'complete', r.error);
  assert.equal(r.steps, plain.steps);
  assert.deepEqual(r.curves.map((c) => c.lr), plain.curves.map((c) => c.lr));
  // The first epoch ran at full width from the same initialisation and data: the same curve.
  assert.equal(r.curves[0].trainLoss, plain.curves[0].trainLoss);
  assert.notEqual(r.curves[2].trainLoss, plain.curves[2].trainLoss);
  assert.deepEqual(r.pruneSteps.map((p) => p.epoch), [1]);
  assert.equal(r.pruneSteps[0].valErrorBefore, plain.curves[0].valError);
});

test('iterative pruning shrinks front-loaded to the one-shot widths; the saved child reloads and counts its params; CLI prints the steps', async () => {
  const out = join(root, 'iterative');
  const r = cli(['train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3', '--data', 'synthetic', '--synthetic-samples', '96', '--batch', '32', '--epochs', '4',
    '--backend', 'wasm', '--prune-at', '1', '--prune-steps', '3', '--criterion', 'l1', '--flops', '0.3', '--seed', '3', '--save', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stdout.match(/^pruned at epoch \d/gm) ?? []).length, 3);
  const meta = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  const steps = meta.pruned.during.steps as { epoch: number; widths: number[]; kept: number[][] }[];
  assert.deepEqual(steps.map((s) => s.epoch), [1, 2, 3]);
  // One-shot pruning of a full-width model to the same target gives the same final widths.
  const oneShot = join(root, 'one-shot');
  const parentDir = join(root, 'full-parent');
  const t = cli(['train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3', '--data', 'synthetic', '--synthetic-samples', '96', '--batch', '32', '--epochs', '1', '--backend', 'wasm', '--save', parentDir]);
  assert.equal(t.code, 0, t.stderr);
  const p = cli(['prune', '--parent', parentDir, '--criterion', 'l1', '--flops', '0.3', '--backend', 'wasm', '--out', oneShot, '--json']);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(meta.widths, JSON.parse(p.stdout).widths);
  assert.deepEqual(steps[2].widths, meta.widths);
  // Monotone, front-loaded.
  let prev: number[] = full;
  const removed: number[] = [];
  for (const s of steps) {
    s.widths.forEach((w, g) => assert.ok(w <= prev[g], `group ${g} grew at epoch ${s.epoch}`));
    removed.push(prev.reduce((a, b) => a + b, 0) - s.widths.reduce((a, b) => a + b, 0));
    // Kept indices are into the original net, each step's a subset of the one before, and valid for slicing it.
    assert.deepEqual(s.kept.map((k) => k.length), s.widths);
    checkKept(spec, full, s.kept);
    prev = s.widths;
  }
  assert.ok(removed[0] > removed[1] && removed[1] >= removed[2] && removed[2] > 0, `removed per step ${removed}`);
  for (let k = 1; k < steps.length; k++) steps[k].kept.forEach((list, g) => list.forEach((i) => assert.ok(steps[k - 1].kept[g].includes(i))));
  assert.deepEqual(meta.pruned.kept, steps[2].kept);
  assert.deepEqual(meta.pruned.parentWidths, full);
  assert.equal(meta.pruned.criterion, 'l1');
  assert.deepEqual(meta.complexity, complexity(spec, meta.widths));
  // A stock tfjs model whose parameter count is the complexity count.
  await selectBackend('cpu');
  const model = await tf.loadLayersModel(fileLoadHandler(out));
  // Trainable weights: the complexity count takes BN's gamma and beta but not its running statistics.
  assert.equal(model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0), meta.complexity.params);
  const y = model.predict(tf.zeros([2, 8, 8, 1])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 3]);
});

test('pruning at the end, then fine-tuning: records the test error before fine-tuning and numbers the fine-tuning epochs on', async () => {
  const { engine } = await selectEngine('wasm');
  const r = await trainWithPruning(request(engine, { at: 'end', criterion: 'l2', finetuneEpochs: 1 }));
  assert.equal(r.status, 'complete', r.error);
  assert.deepEqual(r.pruneSteps.map((p) => p.epoch), [2]);
  assert.deepEqual(r.curves.map((c) => c.epoch), [1, 2, 3]);
  assert.ok(typeof r.testErrorBeforeFinetune === 'number');
  // Fine-tuning has its own cosine schedule at the fine-tuning peak (0.01), below the run's peak 0.05.
  assert.ok(r.curves[2].lr > 0 && r.curves[2].lr < 0.01, `fine-tuning lr ${r.curves[2].lr}`);
});

const badBase = ['train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3', '--data', 'synthetic', '--synthetic-samples', '64', '--batch', '32', '--epochs', '3', '--backend', 'wasm'];

function assertRefused(cases: [string[], RegExp][]): void {
  for (const [args, message] of cases) {
    const out = join(root, `bad-${Math.random().toString(36).slice(2)}`);
    const r = cli([...badBase, ...args, '--save', out]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${args.join(' ')} wrote nothing`);
  }
}

test('bad schedules and targets: one line, exit code 2, nothing written', () => {
  assertRefused([
    [['--prune-at', '4', '--criterion', 'l1', '--keep', '0.5'], /--prune-at 4 is beyond the run's 3 epoch\(s\)/],
    [['--prune-at', 'soon', '--criterion', 'l1', '--keep', '0.5'], /--prune-at expects an integer >= 0/],
    [['--prune-at', '1', '--prune-steps', '0', '--criterion', 'l1', '--keep', '0.5'], /--prune-steps expects an integer >= 1, got '0'/],
    [['--prune-at', '1', '--prune-steps', '3', '--prune-every', '2', '--criterion', 'l1', '--keep', '0.5'], /ends at epoch 5, beyond the run's 3 epoch/],
    [['--prune-at', 'end', '--prune-steps', '2', '--criterion', 'l1', '--keep', '0.5'], /ends at epoch 4, beyond/],
    [['--prune-at', '1', '--criterion', 'magnitude', '--keep', '0.5'], /unknown criterion 'magnitude' \(known: l1/],
    [['--prune-at', '1', '--criterion', 'l1', '--flops', '10'], /below the .* of one channel per group/],
    [['--prune-at', '1', '--criterion', 'l1', '--widths', '99,32,64,16,16,16,32,32,32,64,64,64'], /group 0 \(stage1\) must keep 1\.\.16 channels/],
  ]);
});

test('pruning flags without their partners: one line, exit code 2, nothing written; a busy --save is refused', () => {
  assertRefused([
    [['--prune-at', '1', '--criterion', 'l1'], /--prune-at needs exactly one target/],
    [['--prune-at', '1', '--keep', '0.5'], /--prune-at needs --criterion/],
    [['--prune-at', '1', '--criterion', 'l1', '--keep', '0.5', '--finetune-epochs', '1'], /--finetune-epochs applies only when the last pruning step is after the last epoch/],
    [['--criterion', 'l1', '--keep', '0.5'], /--criterion needs --prune-at/],
    [['--prune-steps', '2', '--keep', '0.5'], /--prune-steps needs --prune-at/],
  ]);
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep.txt'), 'mine');
  const r = cli([...badBase, '--prune-at', '1', '--criterion', 'l1', '--keep', '0.5', '--save', busy]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--save .* exists and is not empty/);
  assert.deepEqual(readdirSync(busy), ['keep.txt']);
  assert.match(cli(['train', '--help']).stdout, /--prune-at <E\|end>/);
});
