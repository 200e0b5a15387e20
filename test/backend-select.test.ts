/** Backend selection: auto falls back to wasm here (no native TensorFlow installed) and says why. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/training/backends/select.js';
import { isUserError } from '../src/util/errors.js';

test('auto picks wasm and says that the native packages are missing', async () => {
  const chosen = await selectBackend('auto');
  assert.equal(chosen.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(chosen.reason, /^wasm/);
  assert.match(chosen.reason, /@tensorflow\/tfjs-node-gpu and @tensorflow\/tfjs-node are not installed/);
  assert.ok(!chosen.reason.includes('\n'), 'reason is one line');
});

test('selection is idempotent and registers the training kernels', async () => {
  const first = await selectBackend('wasm');
  const again = await selectBackend('wasm');
  assert.deepEqual(again, first);
  for (const kernel of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
    assert.ok(tf.getKernel(kernel, 'wasm') != null, `${kernel} registered on wasm`);
  }
});

test('explicit tensorflow without the native package is a UserError naming the package', async () => {
  await assert.rejects(selectBackend('tensorflow'), (e: unknown) => {
    assert.ok(isUserError(e), 'UserError');
    const message = (e as Error).message;
    assert.match(message, /@tensorflow\/tfjs-node/);
    assert.ok(!message.includes('\n'), 'one line');
    return true;
  });
  assert.equal(tf.getBackend(), 'wasm', 'the active backend is unchanged');
});

test('cpu can be selected explicitly and wasm again afterwards', async () => {
  assert.equal((await selectBackend('cpu')).name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal((await selectBackend('wasm')).name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});
