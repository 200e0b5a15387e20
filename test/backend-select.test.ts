/** Backend selection: auto takes native TensorFlow where it is installed and wasm otherwise, and says why; the tests hold on either kind of machine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/training/backends/select.js';
import { isUserError } from '../src/util/errors.js';

const require = createRequire(import.meta.url);
function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
/** Whether this machine has a native TensorFlow package (the GPU hosts README recommends do). */
const nativeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

test(`auto picks ${nativeInstalled ? 'native tensorflow (installed here)' : 'wasm (no native package here)'} and says why`, async () => {
  const chosen = await selectBackend('auto');
  assert.ok(!chosen.reason.includes('\n'), 'reason is one line');
  assert.equal(tf.getBackend(), chosen.name);
  if (!nativeInstalled) {
    assert.equal(chosen.name, 'wasm');
    assert.match(chosen.reason, /^wasm/);
    assert.match(chosen.reason, /@tensorflow\/tfjs-node-gpu and @tensorflow\/tfjs-node are not installed/);
  } else if (chosen.name === 'tensorflow') {
    assert.match(chosen.reason, /^tensorflow: .*@tensorflow\/tfjs-node(-gpu)? is installed/);
  } else {
    // Installed but unusable (say, no matching CUDA): auto falls back and names the failure.
    assert.equal(chosen.name, 'wasm');
    assert.match(chosen.reason, /failed to load|did not start/);
  }
});

test('selection is idempotent and registers the training kernels', async () => {
  const first = await selectBackend('wasm');
  const again = await selectBackend('wasm');
  assert.deepEqual(again, first);
  for (const kernel of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
    assert.ok(tf.getKernel(kernel, 'wasm') != null, `${kernel} registered on wasm`);
  }
});

test(`explicit tensorflow ${nativeInstalled ? 'starts the native backend' : 'without the native package is a UserError naming the package'}`, async () => {
  await selectBackend('wasm');
  if (nativeInstalled) {
    try {
      const chosen = await selectBackend('tensorflow');
      assert.equal(chosen.name, 'tensorflow');
      assert.equal(tf.getBackend(), 'tensorflow');
    } catch (e) {
      // Installed but unusable: one line naming why.
      assert.ok(isUserError(e), `UserError, got ${String(e)}`);
      assert.match((e as Error).message, /failed to load|did not start/);
    }
    await selectBackend('wasm');
    return;
  }
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
