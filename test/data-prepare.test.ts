/** Splits, normalisation, batches and synthetic data: deterministic, disjoint, and computed from training statistics. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeBatch, normaliser } from '../src/training/data/batch.js';
import { prepareData } from '../src/training/data/prepare.js';
import { makeSynthetic } from '../src/training/data/synthetic.js';
import type { RawDataset } from '../src/training/data/types.js';
import { makeRng } from '../src/util/rng.js';

const raw = makeSynthetic({ shape: [6, 5, 2], classes: 3, samples: 200, seed: 4 });

test('synthetic data is seeded and balanced', () => {
  const again = makeSynthetic({ shape: [6, 5, 2], classes: 3, samples: 200, seed: 4 });
  assert.deepEqual(again.train.images, raw.train.images);
  assert.deepEqual(again.test.labels, raw.test.labels);
  const other = makeSynthetic({ shape: [6, 5, 2], classes: 3, samples: 200, seed: 5 });
  assert.notDeepEqual(other.train.images, raw.train.images);
  const counts = [0, 0, 0];
  for (const l of raw.train.labels) counts[l]++;
  assert.ok(counts.every((c) => c >= 66 && c <= 67), `balanced: ${counts}`);
  assert.equal(raw.test.count, 50);
  assert.equal(raw.augment.flip, false);
});

test('validation split is deterministic, disjoint from training, independent of the subset', () => {
  const a = prepareData(raw, { valFraction: 0.2 });
  const b = prepareData(raw, { valFraction: 0.2, subset: 0.5 });
  assert.equal(a.val.indices.length, 40);
  assert.equal(a.train.indices.length, 160);
  assert.equal(b.train.indices.length, 80);
  assert.deepEqual(a.val.indices, b.val.indices);
  const val = new Set(a.val.indices);
  assert.ok([...a.train.indices].every((i) => !val.has(i)));
  assert.equal(new Set([...a.train.indices, ...a.val.indices]).size, 200);
  assert.deepEqual(prepareData(raw, { valFraction: 0.2 }).train.indices, a.train.indices);
  assert.equal(a.test.indices.length, raw.test.count);
});

test('bad fractions are user errors', () => {
  assert.throws(() => prepareData(raw, { subset: 0 }), /--subset must be in \(0, 1\]/);
  assert.throws(() => prepareData(raw, { valFraction: 1 }), /validation fraction/);
});

test('normalisation uses training statistics per channel, and batches are normalised with them', () => {
  const d = prepareData(raw, { valFraction: 0.2 });
  const pixels = 6 * 5;
  for (let ch = 0; ch < 2; ch++) {
    let sum = 0;
    let sq = 0;
    for (const i of d.train.indices) {
      for (let p = 0; p < pixels; p++) {
        const v = raw.train.images[i * pixels * 2 + p * 2 + ch];
        sum += v;
        sq += v * v;
      }
    }
    const n = d.train.indices.length * pixels;
    assert.ok(Math.abs(d.mean[ch] - sum / n) < 1e-3);
    assert.ok(Math.abs(d.std[ch] - Math.sqrt(sq / n - (sum / n) ** 2)) < 1e-3);
  }
  const lut = normaliser(d);
  const batch = makeBatch(d, d.train, [0, 1, 2, 3], lut);
  assert.equal(batch.x.length, 4 * pixels * 2);
  const src = d.train.indices[2];
  assert.equal(batch.labels[2], raw.train.labels[src]);
  const v = raw.train.images[src * pixels * 2 + 7 * 2 + 1];
  assert.ok(Math.abs(batch.x[2 * pixels * 2 + 7 * 2 + 1] - (v - d.mean[1]) / d.std[1]) < 1e-6);
});

test('augmentation: seeded pad-and-crop and flips keep pixels, fill with black', () => {
  // A 1-channel 4x4 image with distinct pixels, flips allowed.
  const tiny: RawDataset = {
    name: 'tiny',
    shape: [4, 4, 1],
    classes: 2,
    train: { images: Uint8Array.from({ length: 32 }, (_, i) => 10 + i), labels: Uint8Array.from([0, 1]), count: 2 },
    test: { images: new Uint8Array(16), labels: new Uint8Array(1), count: 1 },
    augment: { padCrop: 1, flip: true },
  };
  const d = { ...prepareData(tiny, { valFraction: 0.5 }), mean: Float32Array.of(0), std: Float32Array.of(1) };
  const lut = normaliser(d);
  const plain = makeBatch(d, d.train, [0], lut).x;
  const seen = new Set<string>();
  for (let s = 0; s < 40; s++) {
    const x = makeBatch(d, d.train, [0], lut, makeRng(s, 'aug')).x;
    assert.deepEqual(makeBatch(d, d.train, [0], lut, makeRng(s, 'aug')).x, x, 'same seed, same augmentation');
    // Every output pixel is a source pixel or the black border.
    for (const v of x) assert.ok(v === 0 || plain.includes(v));
    seen.add(x.join());
  }
  assert.ok(seen.size > 10, `crops and flips vary (${seen.size} distinct)`);
  // Mirror without shift: find a sample that is an exact left-right flip of the plain image.
  const mirror = Array.from({ length: 16 }, (_, i) => plain[Math.floor(i / 4) * 4 + 3 - (i % 4)]).join();
  assert.ok(seen.has(mirror), 'a pure mirror occurs');
});
