/** Builds one batch as typed arrays: gather by index, augment, normalise. Tensors are made by the caller, per step. */
import type { Rng } from '../../util/rng.js';
import type { PreparedData, Split } from './types.js';

export interface Batch {
  /** NHWC, normalised. */
  x: Float32Array;
  labels: Int32Array;
  size: number;
}

/** Lookup table from a 0..255 pixel to its normalised value, per channel. */
export function normaliser(data: Pick<PreparedData, 'mean' | 'std'>): Float32Array {
  const c = data.mean.length;
  const lut = new Float32Array(c * 256);
  for (let ch = 0; ch < c; ch++) for (let v = 0; v < 256; v++) lut[ch * 256 + v] = (v - data.mean[ch]) / data.std[ch];
  return lut;
}

/** Advances an augmentation rng past `images` images exactly as makeBatch would draw for them (a run resumed mid-epoch). */
export function skipAugmentation(data: PreparedData, augmentRng: Rng, images: number): void {
  const draws = (data.augment.padCrop ? 2 : 0) + (data.augment.flip ? 1 : 0);
  for (let i = 0; i < images * draws; i++) augmentRng();
}

/**
 * Fills a batch from `positions` (indices into split.indices). With an rng, applies the dataset's augmentation:
 * the image is zero-padded (a black border, as torchvision's RandomCrop) and cropped at a random offset, and
 * mirrored with probability 1/2.
 */
export function makeBatch(
  data: PreparedData,
  split: Split,
  positions: ArrayLike<number>,
  lut: Float32Array,
  augmentRng?: Rng,
): Batch {
  const [h, w, c] = data.shape;
  const size = positions.length;
  const img = h * w * c;
  const x = new Float32Array(size * img);
  const labels = new Int32Array(size);
  const { images } = split.source;
  const pad = augmentRng ? data.augment.padCrop : 0;
  const zero = Float32Array.from({ length: c }, (_, ch) => lut[ch * 256]);
  for (let b = 0; b < size; b++) {
    const src = split.indices[positions[b]];
    labels[b] = split.source.labels[src];
    const base = src * img;
    const out = b * img;
    const dy = pad ? Math.floor(augmentRng!() * (2 * pad + 1)) - pad : 0;
    const dx = pad ? Math.floor(augmentRng!() * (2 * pad + 1)) - pad : 0;
    const flip = augmentRng && data.augment.flip ? augmentRng() < 0.5 : false;
    if (dy === 0 && dx === 0 && !flip) {
      for (let p = 0; p < img; p++) x[out + p] = lut[(p % c) * 256 + images[base + p]];
      continue;
    }
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let xx = 0; xx < w; xx++) {
        const sx = (flip ? w - 1 - xx : xx) + dx;
        const o = out + (y * w + xx) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let ch = 0; ch < c; ch++) x[o + ch] = zero[ch];
        } else {
          const s = base + (sy * w + sx) * c;
          for (let ch = 0; ch < c; ch++) x[o + ch] = lut[ch * 256 + images[s + ch]];
        }
      }
    }
  }
  return { x, labels, size };
}
