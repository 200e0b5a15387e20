/** `prunespace prune` end to end on a tiny trained parent: the child is a stock tfjs model with its provenance; bad input writes nothing. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet } from '../src/nets/registry.js';
import { selectBackend } from '../src/training/backends/select.js';
import { readLayersWeights } from '../src/training/engines/layers-weights.js';
import { sliceWeights } from '../src/training/inherit.js';
import { fileLoadHandler, loadTrained } from '../src/training/save.js';
import { runTrial } from '../src/training/trial.js';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'prunespace-prune-'));
const parent = join(root, 'parent');

before(() => {
  const r = cli(['train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3', '--keep', '0.5', '--data', 'synthetic', '--synthetic-samples', '96', '--batch', '32', '--epochs', '1', '--backend', 'wasm', '--save', parent]);
  assert.equal(r.code, 0, r.stderr);
});

test('prunes by a criterion to a keep ratio, fine-tunes, and saves a loadable model with parent, criterion, kept indices and complexity', async () => {
  const out = join(root, 'pruned');
  const r = cli(['prune', '--parent', parent, '--criterion', 'snip', '--keep', '0.5', '--epochs', '1', '--batch', '32', '--score-batches', '2', '--backend', 'wasm', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^engine: wasm/m);
  assert.match(r.stdout, /test error: parent [\d.]+%, pruned before fine-tuning [\d.]+%/);
  assert.match(r.stdout, /FLOPs .* of the parent\), params/);
  const meta = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  const spec = buildNet(meta.net);
  assert.deepEqual(meta.widths, [4, 8, 16, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
  assert.equal(meta.pruned.criterion, 'snip');
  assert.equal(meta.pruned.parent, parent);
  assert.deepEqual(meta.pruned.parentWidths, [8, 16, 32, 8, 8, 8, 16, 16, 16, 32, 32, 32]);
  assert.deepEqual(meta.pruned.kept.map((k: number[]) => k.length), meta.widths);
  assert.deepEqual(meta.complexity, complexity(spec, meta.widths));
  assert.equal(meta.metrics.epochs, 1);
  assert.ok(typeof meta.metrics.testError === 'number');
  // A stock tfjs LayersModel: loads with plain tfjs and predicts.
  await selectBackend('cpu');
  const model = await tf.loadLayersModel(fileLoadHandler(out));
  const y = model.predict(tf.zeros([2, 8, 8, 1])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 3]);
  // A weight-only criterion to a FLOPs target needs no data; explicit widths work too.
  const byFlops = join(root, 'flops');
  const f = cli(['prune', '--parent', parent, '--criterion', 'l1', '--flops', '0.5', '--backend', 'wasm', '--out', byFlops, '--json']);
  assert.equal(f.code, 0, f.stderr);
  const result = JSON.parse(f.stdout);
  assert.ok(result.complexity.flops <= 0.5 * result.parentComplexity.flops);
});

test('the pruned net is also evaluated with BN re-estimated, and the inherited statistics are what it saves and fine-tunes from', async () => {
  const out = join(root, 'recalibrated');
  const r = cli(['prune', '--parent', parent, '--criterion', 'snip', '--keep', '0.5', '--epochs', '0', '--batch', '32', '--score-batches', '2', '--backend', 'wasm', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /pruned before fine-tuning [\d.]+% \(BN re-estimated on 16 batches: [\d.]+%\)/);
  const { metrics } = JSON.parse(r.stdout);
  assert.ok(metrics.prunedRecalibratedTestError >= 0 && metrics.prunedRecalibratedTestError <= 1);
  const { net, pruned, widths } = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  // Saved without fine-tuning: every running statistic is the parent's at the kept channels, not the re-estimate.
  await selectBackend('cpu');
  const spec = buildNet(net);
  const expected = sliceWeights(spec, pruned.parentWidths, readLayersWeights((await loadTrained(parent)).model, spec), pruned.kept).weights;
  const saved = readLayersWeights((await loadTrained(out)).model, spec);
  const moving = [...saved.keys()].filter((n) => /moving_(mean|variance)$/.test(n));
  assert.ok(moving.length > 0);
  for (const name of moving) assert.deepEqual(Array.from(saved.get(name)!.data), Array.from(expected.get(name)!.data), name);
  assert.deepEqual(widths, [4, 8, 16, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
});

/** A saved model's tensors by name, from model.json's weights manifest and weights.bin (float32, in manifest order). */
function savedTensors(dir: string): Map<string, Float32Array> {
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).weightsManifest as { weights: { name: string; shape: number[] }[] }[];
  const bin = readFileSync(join(dir, 'weights.bin'));
  const all = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
  const out = new Map<string, Float32Array>();
  let at = 0;
  for (const w of manifest.flatMap((g) => g.weights)) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    out.set(w.name, all.slice(at, at + n));
    at += n;
  }
  return out;
}

test('fine-tuning takes Nesterov and precise BN as train does: recorded; precise BN changes the saved BN statistics and nothing else', () => {
  const run = (name: string, extra: string[]) => {
    const out = join(root, name);
    const r = cli(['prune', '--parent', parent, '--criterion', 'l1', '--keep', '0.5', '--epochs', '1', '--batch', '32', '--backend', 'wasm', '--out', out, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return { settings: JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8')).settings, tensors: savedTensors(out) };
  };
  const plain = run('ft-plain', ['--precise-bn', '0']);
  const precise = run('ft-precise', ['--precise-bn', '2']);
  assert.equal(plain.settings.preciseBn, undefined);
  assert.equal(precise.settings.preciseBn, 2);
  let statsDiffer = false;
  for (const [name, a] of plain.tensors) {
    const same = a.every((v, k) => v === precise.tensors.get(name)![k]);
    if (/moving_(mean|variance)/.test(name)) statsDiffer ||= !same;
    else assert.ok(same, `${name}: precise BN changed a trained weight`);
  }
  assert.ok(statsDiffer, 'precise BN left the running statistics as they were');
  const nesterov = run('ft-nesterov', ['--nesterov']);
  assert.equal(nesterov.settings.nesterov, true);
  assert.equal(nesterov.settings.preciseBn, 16);
  assert.equal(plain.settings.nesterov, false);
  const kernel = [...plain.tensors.keys()].find((n) => n.endsWith('/kernel'))!;
  assert.ok(plain.tensors.get(kernel)!.some((v, k) => v !== nesterov.tensors.get(kernel)![k]), 'Nesterov changed nothing');
});

test('bad input: one line, exit code 2, nothing written', () => {
  const notModel = join(root, 'not-a-model');
  mkdirSync(notModel);
  writeFileSync(join(notModel, 'readme.txt'), 'x');
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep.txt'), 'mine');
  const cases: [string[], RegExp][] = [
    [['--parent', notModel, '--criterion', 'l1', '--keep', '0.5'], /not a prunespace model directory/],
    [['--parent', parent, '--criterion', 'magnitude', '--keep', '0.5'], /unknown criterion 'magnitude' \(known: l1, l2/],
    [['--parent', parent, '--criterion', 'l1', '--widths', '1,2,3'], /has 12 channel groups, got 3 widths/],
    [['--parent', parent, '--criterion', 'l1', '--widths', '9,16,32,8,8,8,16,16,16,32,32,32'], /group 0 \(stage1\) must keep 1\.\.8 channels/],
    [['--parent', parent, '--criterion', 'l1', '--flops', '10'], /below the .* of one channel per group/],
    [['--parent', parent, '--criterion', 'l1'], /exactly one of --keep, --widths, --flops or --params/],
    [['--parent', parent, '--criterion', 'l1', '--keep', '0.5', '--flops', '0.5'], /exactly one of/],
  ];
  for (const [args, message] of cases) {
    const out = join(root, `out-${Math.random().toString(36).slice(2)}`);
    const r = cli(['prune', ...args, '--out', out]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${args.join(' ')} wrote nothing`);
  }
  const r = cli(['prune', '--parent', parent, '--criterion', 'l1', '--keep', '0.5', '--out', busy]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exists and is not empty/);
  assert.deepEqual(readdirSync(busy), ['keep.txt']);
  assert.equal(cli(['prune', '--help']).code, 0);
});

test('bench-infer times the parent and the pruned model on one engine, the first as reference', () => {
  const pruned = join(root, 'pruned');
  const r = cli(['bench-infer', parent, pruned, '--backend', 'wasm', '--repeats', '3', '--min-repeat-ms', '5', '--warmup', '1', '--batch', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.equal(row.engine, 'wasm');
    assert.ok(row.latencyMs > 0 && row.throughput > 0);
  }
  assert.equal(rows[0].flopsSaving, 0);
  assert.ok(rows[1].flopsSaving > 0.5, 'keep 0.5 of every group saves about 3/4 of the FLOPs');
  assert.ok(Number.isFinite(rows[1].latencyToFlops));
  const bad = cli(['bench-infer', parent, join(root, 'nowhere')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /nowhere: not a prunespace model directory/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});

test('a trial request can start from inherited weights: parent directory, criterion and kept channels as data', async () => {
  const meta = JSON.parse(readFileSync(join(parent, 'prunespace.json'), 'utf8'));
  const spec = buildNet(meta.net);
  const kept: number[][] = meta.widths.map((w: number) => Array.from({ length: Math.ceil(w / 2) }, (_, i) => i));
  const widths = kept.map((k) => k.length);
  const saveDir = join(root, 'inherited-trial');
  const settings = { ...meta.settings, epochs: 1, steps: 1, lr: 1e-12, weightDecay: 0, backend: 'wasm' as const };
  const r = await runTrial({ net: spec.ref, widths, settings, seed: 5, saveDir, init: { mode: 'inherit', parent, criterion: 'l1', kept } });
  assert.equal(r.status, 'complete', r.error);
  const { model: parentModel } = await loadTrained(parent);
  const { model: child } = await loadTrained(saveDir);
  const expected = sliceWeights(spec, meta.widths, readLayersWeights(parentModel, spec), kept).weights.get('stage2.block1.conv1/kernel')!;
  const got = readLayersWeights(child, spec).get('stage2.block1.conv1/kernel')!;
  assert.deepEqual(got.shape, expected.shape);
  got.data.forEach((v, i) => assert.ok(Math.abs(v - expected.data[i]) < 1e-6, `weight ${i}`));
  await assert.rejects(
    runTrial({ net: spec.ref, widths: widths.map((w) => w + 1), settings, seed: 5, init: { mode: 'inherit', parent, criterion: 'l1', kept } }),
    /kept indices give widths .* the trial asks for/,
  );
});
