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
import { fileLoadHandler } from '../src/training/save.js';

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
    [['--parent', parent, '--criterion', 'l1'], /exactly one of --keep, --widths or --flops/],
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
