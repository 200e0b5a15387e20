/** The real Fashion-MNIST files of Debian's dataset-fashion-mnist: headers, counts, class balance and known labels; skipped, with the reason, where they are absent. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../src/training/data/idx.js';

// FMNIST_DIR points the test elsewhere, as it does for scripts/demo.sh.
const dir = process.env.FMNIST_DIR ?? FASHION_MNIST_DIR;
const files = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const missing = files.filter((f) => !existsSync(join(dir, `${f}.gz`)) && !existsSync(join(dir, f)));
const skip = missing.length > 0 ? `real Fashion-MNIST not installed (${join(dir, missing[0])}[.gz] missing; apt-get install dataset-fashion-mnist)` : false;

function header(name: string, rank: number): number[] {
  const gz = join(dir, `${name}.gz`);
  const bytes = existsSync(gz) ? gunzipSync(readFileSync(gz)) : readFileSync(join(dir, name));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: rank + 1 }, (_, i) => view.getUint32(4 * i));
}

describe('real Fashion-MNIST files', () => {
  test('IDX headers: magic numbers and dimensions', { skip }, () => {
    assert.deepEqual(header('train-images-idx3-ubyte', 3), [0x803, 60000, 28, 28]);
    assert.deepEqual(header('train-labels-idx1-ubyte', 1), [0x801, 60000]);
    assert.deepEqual(header('t10k-images-idx3-ubyte', 3), [0x803, 10000, 28, 28]);
    assert.deepEqual(header('t10k-labels-idx1-ubyte', 1), [0x801, 10000]);
  });

  test('the loader gives 60000/10000 images of 28x28x1, balanced classes and the known first labels', { skip }, () => {
    const raw = loadFashionMnist(dir);
    assert.deepEqual(raw.shape, [28, 28, 1]);
    assert.equal(raw.classes, 10);
    assert.equal(raw.train.count, 60000);
    assert.equal(raw.test.count, 10000);
    assert.equal(raw.train.images.length, 60000 * 784);
    assert.equal(raw.test.images.length, 10000 * 784);
    // The published files start with these labels (ankle boot, T-shirt, T-shirt, dress, ...).
    assert.deepEqual([...raw.train.labels.subarray(0, 10)], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert.deepEqual([...raw.test.labels.subarray(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    // Every class has 6000 training and 1000 test images.
    for (const [set, per] of [[raw.train, 6000], [raw.test, 1000]] as const) {
      const counts = new Array<number>(10).fill(0);
      for (const l of set.labels) counts[l]++;
      assert.deepEqual(counts, new Array(10).fill(per));
    }
    // Pixel sums of the first image of each split pin the byte order and the header offset.
    const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
    assert.equal(sum(raw.train.images.subarray(0, 784)), 76247);
    assert.equal(sum(raw.test.images.subarray(0, 784)), 33456);
  });
});
