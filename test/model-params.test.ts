/** The tfjs model of every family has exactly the trainable parameters the complexity count says; the shortcut is parameter-free. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet, familyNames } from '../src/nets/registry.js';
import { baseWidths, keepWidths, resolveNet } from '../src/nets/resolve.js';
import type { NetSpec, WidthConfig } from '../src/nets/types.js';
import { selectBackend } from '../src/training/backends/select.js';
import { buildModel, trainableParams } from '../src/training/model.js';
import { makeRng } from '../src/util/rng.js';

before(async () => {
  await selectBackend('auto');
});

const IMAGENET_SIZED = new Set(['mobilenet-v1', 'mobilenet-v2', 'resnet50']);

/** Random widths: every group keeps between 1 and all of its channels. */
function randomWidths(spec: NetSpec, seed: number): WidthConfig {
  const rng = makeRng(seed, 'widths');
  return spec.groups.map((g) => 1 + Math.floor(rng() * g.base));
}

for (const family of familyNames()) {
  test(`${family}: trainable parameters equal the complexity count`, () => {
    // Small inputs keep the test fast; ImageNet families need 64x64 to survive their five stride-2 stages.
    const input: [number, number, number] = IMAGENET_SIZED.has(family) ? [64, 64, 3] : [32, 32, 3];
    const specs = [buildNet({ family, input, classes: 7 })];
    if (family.startsWith('resnet') && family !== 'resnet50') specs.push(buildNet({ family, input, classes: 7, shortcut: 'projection' }));
    for (const spec of specs) {
      const configs = [keepWidths(spec, 0.25), randomWidths(spec, 1), randomWidths(spec, 2)];
      // The full original only for the smaller families: resnet50 and vgg at full width are slow to initialise.
      if (!IMAGENET_SIZED.has(family) && !family.startsWith('vgg')) configs.push(baseWidths(spec));
      for (const widths of configs) {
        const model = buildModel(spec, widths, 3);
        try {
          assert.equal(trainableParams(model), complexity(spec, widths).params, `${family} ${spec.ref.shortcut} widths ${widths}`);
          const out = model.outputs[0].shape;
          assert.deepEqual(out, [null, 7]);
        } finally {
          model.dispose();
        }
      }
    }
  });
}

test('the zero-pad shortcut subsamples by its stride and pads or drops channels, and is frozen', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 2], classes: 3 });
  const resolved = resolveNet(spec, baseWidths(spec));
  const node = resolved.find((r) => r.node.op === 'shortcut')!;
  for (const widths of [baseWidths(spec), spec.groups.map((g) => (g.name === 'stage1' ? 16 : g.name === 'stage2' ? 5 : g.base))]) {
    const model = buildModel(spec, widths, 1);
    const layer = model.getLayer(node.node.id);
    assert.equal(layer.trainable, false);
    assert.equal(layer.trainableWeights.length, 0);
    const cin = widths[spec.groups.find((g) => g.name === 'stage1')!.id];
    const cout = widths[spec.groups.find((g) => g.name === 'stage2')!.id];
    const x = tf.randomNormal([2, 8, 8, cin], 0, 1, 'float32', 5) as tf.Tensor4D;
    const y = layer.apply(x) as tf.Tensor4D;
    const sub = tf.slice(tf.stridedSlice(x, [0, 0, 0, 0], [2, 8, 8, cin], [1, 2, 2, 1]), [0, 0, 0, 0], [2, 4, 4, Math.min(cin, cout)]);
    const expected = cout > cin ? tf.pad(sub, [[0, 0], [0, 0], [0, 0], [0, cout - cin]]) : sub;
    assert.deepEqual(y.shape, [2, 4, 4, cout]);
    assert.ok(tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0] < 1e-6);
    tf.dispose([x, y, sub, expected]);
    model.dispose();
  }
});

test('one seed fixes the initialisation', () => {
  const spec = buildNet({ family: 'resnet20', input: [16, 16, 1], classes: 4 });
  const widths = keepWidths(spec, 0.25);
  const [a, b, c] = [1, 1, 2].map((s) => buildModel(spec, widths, s));
  const first = (m: tf.LayersModel) => m.getWeights()[0].dataSync();
  assert.deepEqual(first(a), first(b));
  assert.notDeepEqual(first(a), first(c));
  [a, b, c].forEach((m) => m.dispose());
});
