/** CIFAR-10 and CIFAR-100 from the standard binary batches: label byte(s) then 3x1024 planar RGB per record. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../util/errors.js';
import type { ImageSet, RawDataset } from './types.js';

const PIXELS = 32 * 32;

interface Layout {
  name: 'cifar10' | 'cifar100';
  /** The folder the official tarball extracts to; accepted inside the given directory. */
  folder: string;
  train: string[];
  test: string[];
  /** Label bytes per record, and which of them is the class (CIFAR-100: coarse then fine). */
  labelBytes: number;
  labelIndex: number;
  classes: number;
}

const LAYOUTS: Record<'cifar10' | 'cifar100', Layout> = {
  cifar10: {
    name: 'cifar10',
    folder: 'cifar-10-batches-bin',
    train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    test: ['test_batch.bin'],
    labelBytes: 1,
    labelIndex: 0,
    classes: 10,
  },
  cifar100: {
    name: 'cifar100',
    folder: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    labelBytes: 2,
    labelIndex: 1,
    classes: 100,
  },
};

/** Decodes records of one file, converting planar CHW to NHWC. */
export function parseCifarFile(bytes: Uint8Array, layout: Layout, file: string): ImageSet {
  const record = layout.labelBytes + 3 * PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new UserError(`${file}: truncated or not a ${layout.name} batch: ${bytes.length} bytes is not a multiple of the ${record}-byte record`);
  }
  const count = bytes.length / record;
  const images = new Uint8Array(count * 3 * PIXELS);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const base = n * record;
    const label = bytes[base + layout.labelIndex];
    if (label >= layout.classes) {
      throw new UserError(`${file}: record ${n} has label ${label}, not a class in 0..${layout.classes - 1}; is this a ${layout.name} file?`);
    }
    labels[n] = label;
    const src = base + layout.labelBytes;
    const dst = n * 3 * PIXELS;
    for (let p = 0; p < PIXELS; p++) {
      images[dst + 3 * p] = bytes[src + p];
      images[dst + 3 * p + 1] = bytes[src + PIXELS + p];
      images[dst + 3 * p + 2] = bytes[src + 2 * PIXELS + p];
    }
  }
  return { images, labels, count };
}

function concat(sets: ImageSet[]): ImageSet {
  if (sets.length === 1) return sets[0];
  const count = sets.reduce((a, s) => a + s.count, 0);
  const images = new Uint8Array(sets.reduce((a, s) => a + s.images.length, 0));
  const labels = new Uint8Array(count);
  let i = 0;
  let l = 0;
  for (const s of sets) {
    images.set(s.images, i);
    labels.set(s.labels, l);
    i += s.images.length;
    l += s.count;
  }
  return { images, labels, count };
}

/** Finds the directory holding the batches: the given one, or the tarball's folder inside it. */
function batchDir(dir: string, layout: Layout): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`${dir}: no such directory; pass --data-dir with the ${layout.name} binary batches (${layout.folder})`);
  }
  if (existsSync(join(dir, layout.test[0]))) return dir;
  if (existsSync(join(dir, layout.folder, layout.test[0]))) return join(dir, layout.folder);
  throw new UserError(`${join(dir, layout.test[0])}: file not found; is ${dir} a ${layout.name} binary directory (${layout.folder})?`);
}

function readSet(dir: string, files: string[], layout: Layout): ImageSet {
  return concat(
    files.map((f) => {
      const file = join(dir, f);
      if (!existsSync(file)) throw new UserError(`${file}: file not found; the ${layout.name} directory is incomplete`);
      return parseCifarFile(readFileSync(file), layout, file);
    }),
  );
}

export function defaultCifarDir(name: 'cifar10' | 'cifar100'): string {
  return join('data', LAYOUTS[name].folder);
}

export function loadCifar(name: 'cifar10' | 'cifar100', dir = defaultCifarDir(name)): RawDataset {
  const layout = LAYOUTS[name];
  const root = batchDir(dir, layout);
  return {
    name,
    shape: [32, 32, 3],
    classes: layout.classes,
    train: readSet(root, layout.train, layout),
    test: readSet(root, layout.test, layout),
    // The standard CIFAR recipe: 4 px pad-and-crop and mirroring (natural objects are mirror-symmetric classes).
    augment: { padCrop: 4, flip: true },
  };
}

export { LAYOUTS as CIFAR_LAYOUTS };
