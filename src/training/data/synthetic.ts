/** A seeded, learnable synthetic dataset for tests: each class is a pair of oriented gratings with its own colour. */
import type { Shape } from '../../nets/types.js';
import { makeRng, type Rng } from '../../util/rng.js';
import type { ImageSet, RawDataset } from './types.js';

export interface SyntheticOptions {
  shape: Shape;
  classes: number;
  /** Training images (test gets a quarter as many, at least one per class). */
  samples?: number;
  seed?: number;
}

interface ClassPattern {
  /** Two gratings: direction (radians) and spatial frequency (cycles per image). */
  gratings: { angle: number; freq: number }[];
  /** Per-channel gain, so colour also carries the class where there are several channels. */
  gain: number[];
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

function patterns(classes: number, channels: number, rng: Rng): ClassPattern[] {
  return Array.from({ length: classes }, (_, k) => ({
    // Directions spread over [0, pi): mirroring maps a direction onto another class's, so no flips for this data.
    gratings: [
      { angle: (Math.PI * k) / classes, freq: 1.5 + 2.5 * rng() },
      { angle: Math.PI * rng(), freq: 1 + 3 * rng() },
    ],
    gain: Array.from({ length: channels }, () => 0.5 + rng()),
  }));
}

function render(count: number, shape: Shape, pats: ClassPattern[], rng: Rng): ImageSet {
  const [h, w, c] = shape;
  const images = new Uint8Array(count * h * w * c);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const k = n % pats.length;
    labels[n] = k;
    const p = pats[k];
    // Random phase per image: the net must learn orientation and frequency, not memorise pixels.
    const phases = p.gratings.map(() => 2 * Math.PI * rng());
    const contrast = 0.7 + 0.3 * rng();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = 0;
        p.gratings.forEach((g, i) => {
          const t = (x / w) * Math.cos(g.angle) + (y / h) * Math.sin(g.angle);
          v += Math.sin(2 * Math.PI * g.freq * t + phases[i]) * (i === 0 ? 1 : 0.5);
        });
        for (let ch = 0; ch < c; ch++) {
          const value = 128 + 60 * contrast * p.gain[ch] * v + 25 * gaussian(rng);
          images[((n * h + y) * w + x) * c + ch] = Math.max(0, Math.min(255, Math.round(value)));
        }
      }
    }
  }
  // Class order would otherwise be n mod K; shuffle so that splits by position stay balanced but unordered.
  return shuffleSet({ images, labels, count }, shape, rng);
}

function shuffleSet(set: ImageSet, shape: Shape, rng: Rng): ImageSet {
  const size = shape[0] * shape[1] * shape[2];
  const order = Array.from({ length: set.count }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const images = new Uint8Array(set.images.length);
  const labels = new Uint8Array(set.count);
  order.forEach((src, dst) => {
    images.set(set.images.subarray(src * size, (src + 1) * size), dst * size);
    labels[dst] = set.labels[src];
  });
  return { images, labels, count: set.count };
}

export function makeSynthetic({ shape, classes, samples = 1024, seed = 0 }: SyntheticOptions): RawDataset {
  const pats = patterns(classes, shape[2], makeRng(seed, 'synthetic-classes'));
  return {
    name: 'synthetic',
    shape,
    classes,
    train: render(samples, shape, pats, makeRng(seed, 'synthetic-train')),
    test: render(Math.max(classes, Math.round(samples / 4)), shape, pats, makeRng(seed, 'synthetic-test')),
    augment: { padCrop: Math.min(2, Math.floor(Math.min(shape[0], shape[1]) / 8)), flip: false },
  };
}
