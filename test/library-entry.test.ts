/** The package entry (`import { loadTrained } from 'prunespace'`) loads a model saved by `prunespace train --save` with the installed packages only. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ROOT } from './campaign-helpers.js';
import * as entry from '../src/index.js';

test("package.json's entry is the compiled src/index.ts", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
  assert.ok(existsSync(join(ROOT, 'src/index.ts')));
});

test('loadTrained reads a model saved by prunespace train and predicts', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'prunespace-entry-')), 'model');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3',
    '--keep', '0.25', '--data', 'synthetic', '--synthetic-samples', '64', '--batch', '32', '--steps', '1', '--backend', 'wasm', '--save', dir], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await entry.selectBackend('wasm');
  const { model, metadata } = await entry.loadTrained(dir);
  assert.equal(metadata.net.family, 'resnet20');
  assert.deepEqual(model.inputs[0].shape, [null, 8, 8, 1]);
  const y = model.predict(tf.zeros([2, 8, 8, 1])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 3]);
  const rows = (await y.array()) as number[][];
  for (const row of rows) assert.ok(row.every(Number.isFinite), 'finite logits');
});
