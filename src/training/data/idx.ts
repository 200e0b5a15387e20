/** Fashion-MNIST's IDX files (gzipped or not): magic number, dimensions, then unsigned bytes. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../../util/errors.js';
import type { ImageSet, RawDataset } from './types.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** IDX magic: two zero bytes, type 0x08 (unsigned byte), number of dimensions. */
const UBYTE = 0x08;

/** Reads `name.gz` (or an uncompressed `name`) from dir. */
function readMaybeGzipped(dir: string, name: string): { bytes: Uint8Array; file: string } {
  const gz = join(dir, `${name}.gz`);
  const plain = join(dir, name);
  if (existsSync(gz)) {
    let bytes: Buffer;
    try {
      bytes = gunzipSync(readFileSync(gz));
    } catch (e) {
      throw new UserError(`${gz}: not a valid gzip file (${(e as Error).message})`);
    }
    return { bytes, file: gz };
  }
  if (existsSync(plain) && statSync(plain).isFile()) return { bytes: readFileSync(plain), file: plain };
  throw new UserError(
    `${gz}: file not found; is ${dir} a Fashion-MNIST directory? (install dataset-fashion-mnist or pass --data-dir)`,
  );
}

/** Parses an IDX file of unsigned bytes with `rank` dimensions; returns dims and the payload. */
export function parseIdx(bytes: Uint8Array, rank: number, file: string): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4 + 4 * rank) throw new UserError(`${file}: truncated: ${bytes.length} bytes, shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = (UBYTE << 8) | rank;
  if (magic !== expected) {
    throw new UserError(
      `${file}: wrong magic number 0x${magic.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')} (IDX, unsigned bytes, ${rank} dimensions)`,
    );
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * rank;
  if (bytes.length - offset !== size) {
    const what = bytes.length - offset < size ? 'truncated' : 'has trailing bytes';
    throw new UserError(`${file}: ${what}: ${bytes.length - offset} data bytes, header says ${dims.join('x')} = ${size}`);
  }
  return { dims, data: bytes.subarray(offset) };
}

function readSplit(dir: string, prefix: string, classes: number): ImageSet & { h: number; w: number } {
  const img = readMaybeGzipped(dir, `${prefix}-images-idx3-ubyte`);
  const lab = readMaybeGzipped(dir, `${prefix}-labels-idx1-ubyte`);
  const images = parseIdx(img.bytes, 3, img.file);
  const labels = parseIdx(lab.bytes, 1, lab.file);
  const [count, h, w] = images.dims;
  if (labels.dims[0] !== count) {
    throw new UserError(`${lab.file}: ${labels.dims[0]} labels, but ${img.file} has ${count} images`);
  }
  const bad = labels.data.findIndex((l) => l >= classes);
  if (bad >= 0) throw new UserError(`${lab.file}: label ${labels.data[bad]} of item ${bad} is not a class in 0..${classes - 1}`);
  return { images: images.data, labels: labels.data, count, h, w };
}

/** Fashion-MNIST: 60000 training and 10000 test images, 28x28 grey, 10 classes. */
export function loadFashionMnist(dir = FASHION_MNIST_DIR): RawDataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`${dir}: no such directory; install dataset-fashion-mnist or pass --data-dir`);
  }
  const train = readSplit(dir, 'train', 10);
  const test = readSplit(dir, 't10k', 10);
  if (train.h !== test.h || train.w !== test.w) {
    throw new UserError(`${dir}: training images are ${train.h}x${train.w} but test images ${test.h}x${test.w}`);
  }
  return {
    name: 'fashion-mnist',
    shape: [train.h, train.w, 1],
    classes: 10,
    train: { images: train.images, labels: train.labels, count: train.count },
    test: { images: test.images, labels: test.labels, count: test.count },
    // Clothes keep their class when mirrored (a left shoe mirrored is a right shoe), so flips fit;
    // the objects fill the 28x28 frame, so shifts of up to 2 px (not CIFAR's 4) keep them in view.
    augment: { padCrop: 2, flip: true },
  };
}
