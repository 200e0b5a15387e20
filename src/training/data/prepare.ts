/** Turns a RawDataset into training, validation and test splits with per-channel normalisation from training statistics. */
import { UserError } from '../../util/errors.js';
import { makeRng } from '../../util/rng.js';
import type { ImageSet, PreparedData, RawDataset, Split } from './types.js';

export interface PrepareOptions {
  /** Fraction of the official training set held out for validation. */
  valFraction?: number;
  /** Fraction of the remaining training images used, for low-fidelity search. */
  subset?: number;
  /** Fraction of the test split evaluated (a fixed seeded sample, the same for every trial); default all. */
  testSubset?: number;
}

export const DEFAULT_VAL_FRACTION = 0.1;

/** Seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, rng: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Per-channel mean and standard deviation over the split's pixels, in 0..255 units. */
export function channelStats(split: Split, pixelsPerImage: number, channels: number): { mean: Float32Array; std: Float32Array } {
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  // Histogram per channel: exact and far cheaper than summing squares of every pixel in floats.
  const hist = new Float64Array(channels * 256);
  const size = pixelsPerImage * channels;
  const { images } = split.source;
  for (const i of split.indices) {
    const base = i * size;
    for (let p = 0; p < size; p++) hist[(p % channels) * 256 + images[base + p]]++;
  }
  const mean = new Float32Array(channels);
  const std = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let n = 0;
    for (let v = 0; v < 256; v++) {
      const k = hist[c * 256 + v];
      n += k;
      sum[c] += k * v;
      sq[c] += k * v * v;
    }
    mean[c] = sum[c] / n;
    // A constant channel would divide by zero; 1 leaves it centred but unscaled.
    std[c] = Math.sqrt(Math.max(sq[c] / n - mean[c] * mean[c], 0)) || 1;
  }
  return { mean, std };
}

/** A fixed seeded share of a split, in index order, so every trial is measured on the same images. */
function sampleOf(set: ImageSet, share: number, stream: string): Split {
  const n = Math.max(1, Math.round(set.count * share));
  const picked = permutation(set.count, makeRng('prunespace', stream)).slice(0, n).sort();
  return { source: set, indices: picked };
}

function all(set: ImageSet): Split {
  return { source: set, indices: Int32Array.from({ length: set.count }, (_, i) => i) };
}

/** How many images the validation and training splits get out of `count` training images. */
export function splitSizes(count: number, valFraction = DEFAULT_VAL_FRACTION, subset = 1): { val: number; train: number } {
  const val = Math.max(1, Math.round(count * valFraction));
  return { val, train: Math.max(1, Math.round((count - val) * subset)) };
}

/**
 * Holds out a validation split with a fixed seed (the same for every trial, so trials are compared on the same
 * images), then keeps a subset of the rest; the test split is the official one, untouched.
 */
export function prepareData(raw: RawDataset, opts: PrepareOptions = {}): PreparedData {
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  const subset = opts.subset ?? 1;
  if (!(valFraction > 0 && valFraction < 1)) throw new UserError(`validation fraction must be in (0, 1), got ${valFraction}`);
  if (!(subset > 0 && subset <= 1)) throw new UserError(`--subset must be in (0, 1], got ${subset}`);
  const testSubset = opts.testSubset ?? 1;
  if (!(testSubset > 0 && testSubset <= 1)) throw new UserError(`--test-subset must be in (0, 1], got ${testSubset}`);
  const order = permutation(raw.train.count, makeRng('prunespace', `${raw.name}/validation-split`));
  const { val: nVal, train: nTrain } = splitSizes(raw.train.count, valFraction, subset);
  const rest = order.subarray(nVal);
  if (rest.length < 1) throw new UserError(`${raw.name}: too few training images (${raw.train.count}) to hold out a validation split`);
  const train: Split = { source: raw.train, indices: rest.slice(0, nTrain) };
  const val: Split = { source: raw.train, indices: order.slice(0, nVal) };
  const [h, w, c] = raw.shape;
  return {
    name: raw.name,
    shape: raw.shape,
    classes: raw.classes,
    train,
    val,
    test: testSubset < 1 ? sampleOf(raw.test, testSubset, `${raw.name}/test-subset`) : all(raw.test),
    ...channelStats(train, h * w, c),
    augment: raw.augment,
  };
}
