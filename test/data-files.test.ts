/** Dataset files: Fashion-MNIST IDX and CIFAR binaries decode correctly, and every corrupt or missing file is one UserError naming it. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadCifar } from '../src/training/data/cifar.js';
import { loadFashionMnist } from '../src/training/data/idx.js';
import { UserError } from '../src/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'prunespace-data-'));

function idx(dims: number[], data: Uint8Array, magic = 0x0800 | dims.length): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** A Fashion-MNIST directory of n training and m test images of 4x3 pixels; `edit` corrupts one file. */
function fashionDir(name: string, edit?: (files: Record<string, Buffer>) => void, gzip = true): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const pixels = (n: number) => Uint8Array.from({ length: n * 12 }, (_, i) => i % 256);
  const files: Record<string, Buffer> = {
    'train-images-idx3-ubyte': idx([5, 4, 3], pixels(5)),
    'train-labels-idx1-ubyte': idx([5], Uint8Array.from([0, 1, 2, 3, 9])),
    't10k-images-idx3-ubyte': idx([2, 4, 3], pixels(2)),
    't10k-labels-idx1-ubyte': idx([2], Uint8Array.from([4, 5])),
  };
  edit?.(files);
  for (const [f, bytes] of Object.entries(files)) writeFileSync(join(dir, gzip ? `${f}.gz` : f), gzip ? gzipSync(bytes) : bytes);
  return dir;
}

/** Asserts a UserError whose message names the file and matches the problem. */
function rejects(fn: () => unknown, file: string, problem: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, problem);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('Fashion-MNIST IDX files', () => {
  test('decodes gzipped and plain files', () => {
    for (const gzip of [true, false]) {
      const raw = loadFashionMnist(fashionDir(`ok-${gzip}`, undefined, gzip));
      assert.deepEqual(raw.shape, [4, 3, 1]);
      assert.equal(raw.train.count, 5);
      assert.equal(raw.test.count, 2);
      assert.deepEqual([...raw.train.labels], [0, 1, 2, 3, 9]);
      assert.equal(raw.train.images[13], 13);
    }
  });

  test('wrong magic number', () => {
    const dir = fashionDir('magic', (f) => (f['train-images-idx3-ubyte'] = idx([5, 4, 3], new Uint8Array(60), 0x0801)));
    rejects(() => loadFashionMnist(dir), 'train-images-idx3-ubyte.gz', /wrong magic number 0x00000801, expected 0x00000803/);
  });

  test('truncated file', () => {
    const dir = fashionDir('truncated', (f) => (f['t10k-images-idx3-ubyte'] = f['t10k-images-idx3-ubyte'].subarray(0, 30)));
    rejects(() => loadFashionMnist(dir), 't10k-images-idx3-ubyte.gz', /truncated: 14 data bytes, header says 2x4x3 = 24/);
  });

  test('file shorter than its header', () => {
    const dir = fashionDir('header', (f) => (f['train-labels-idx1-ubyte'] = f['train-labels-idx1-ubyte'].subarray(0, 6)));
    rejects(() => loadFashionMnist(dir), 'train-labels-idx1-ubyte.gz', /truncated: 6 bytes/);
  });

  test('labels and images disagree', () => {
    const dir = fashionDir('count', (f) => (f['train-labels-idx1-ubyte'] = idx([4], Uint8Array.from([0, 1, 2, 3]))));
    rejects(() => loadFashionMnist(dir), 'train-labels-idx1-ubyte.gz', /4 labels, but .* has 5 images/);
  });

  test('label out of range', () => {
    const dir = fashionDir('label', (f) => (f['t10k-labels-idx1-ubyte'] = idx([2], Uint8Array.from([4, 10]))));
    rejects(() => loadFashionMnist(dir), 't10k-labels-idx1-ubyte.gz', /label 10 of item 1 is not a class in 0..9/);
  });

  test('not gzip', () => {
    const dir = fashionDir('gzip');
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), 'this is not gzip');
    rejects(() => loadFashionMnist(dir), 'train-images-idx3-ubyte.gz', /not a valid gzip file/);
  });

  test('missing file and wrong directory', () => {
    const dir = join(root, 'empty');
    mkdirSync(dir);
    rejects(() => loadFashionMnist(dir), 'train-images-idx3-ubyte.gz', /file not found; is .* a Fashion-MNIST directory/);
    rejects(() => loadFashionMnist(join(root, 'nowhere')), 'nowhere', /no such directory/);
  });
});

/** CIFAR records: label byte(s) then planar R, G, B; pixel p of channel c holds (label + c + p) mod 256. */
function cifarRecords(labels: number[][]): Buffer {
  return Buffer.concat(
    labels.map((ls) => {
      const planes = Uint8Array.from({ length: 3072 }, (_, i) => (ls[ls.length - 1] + Math.floor(i / 1024) + (i % 1024)) % 256);
      return Buffer.concat([Buffer.from(ls), Buffer.from(planes)]);
    }),
  );
}

function cifar10Dir(name: string, edit?: (files: Record<string, Buffer>) => void, nested = false): string {
  const top = join(root, name);
  const dir = nested ? join(top, 'cifar-10-batches-bin') : top;
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Buffer> = { 'test_batch.bin': cifarRecords([[7]]) };
  for (let i = 1; i <= 5; i++) files[`data_batch_${i}.bin`] = cifarRecords([[i], [i + 1]]);
  edit?.(files);
  for (const [f, bytes] of Object.entries(files)) writeFileSync(join(dir, f), bytes);
  return top;
}

describe('CIFAR binary batches', () => {
  test('CIFAR-10: five training batches and the test batch, planar RGB to NHWC; the tarball folder is found', () => {
    for (const nested of [false, true]) {
      const raw = loadCifar('cifar10', cifar10Dir(`c10-${nested}`, undefined, nested));
      assert.equal(raw.train.count, 10);
      assert.equal(raw.test.count, 1);
      assert.deepEqual([...raw.train.labels], [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
      // Test image, label 7: pixel 5's channels are 7+0+5, 7+1+5, 7+2+5.
      assert.deepEqual([...raw.test.images.subarray(15, 18)], [12, 13, 14]);
      assert.deepEqual(raw.shape, [32, 32, 3]);
    }
  });

  test('CIFAR-100: two label bytes, the fine label is the class', () => {
    const dir = join(root, 'c100');
    mkdirSync(dir);
    writeFileSync(join(dir, 'train.bin'), cifarRecords([[3, 42], [19, 99]]));
    writeFileSync(join(dir, 'test.bin'), cifarRecords([[0, 5]]));
    const raw = loadCifar('cifar100', dir);
    assert.equal(raw.classes, 100);
    assert.deepEqual([...raw.train.labels], [42, 99]);
    assert.equal(raw.train.images[0], 42);
  });

  test('truncated batch', () => {
    const dir = cifar10Dir('c10-trunc', (f) => (f['data_batch_3.bin'] = f['data_batch_3.bin'].subarray(0, 5000)));
    rejects(() => loadCifar('cifar10', dir), 'data_batch_3.bin', /truncated or not a cifar10 batch: 5000 bytes is not a multiple of the 3073-byte record/);
  });

  test('label out of range (e.g. a CIFAR-100 file given as CIFAR-10)', () => {
    const dir = cifar10Dir('c10-label', (f) => (f['test_batch.bin'] = cifarRecords([[12]])));
    rejects(() => loadCifar('cifar10', dir), 'test_batch.bin', /record 0 has label 12, not a class in 0..9/);
  });

  test('empty batch, missing batch, wrong directory, no directory', () => {
    const emptyBatch = cifar10Dir('c10-empty-batch', (f) => (f['data_batch_5.bin'] = Buffer.alloc(0)));
    rejects(() => loadCifar('cifar10', emptyBatch), 'data_batch_5.bin', /0 bytes/);
    const missing = cifar10Dir('c10-missing', (f) => delete f['data_batch_4.bin']);
    rejects(() => loadCifar('cifar10', missing), 'data_batch_4.bin', /file not found; the cifar10 directory is incomplete/);
    const empty = join(root, 'c10-empty');
    mkdirSync(empty);
    rejects(() => loadCifar('cifar10', empty), 'test_batch.bin', /file not found; is .* a cifar10 binary directory/);
    rejects(() => loadCifar('cifar100', join(root, 'none')), 'none', /no such directory/);
  });
});
