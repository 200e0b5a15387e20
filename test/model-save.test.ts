/** Saved subnetworks are standard tfjs LayersModels: they load from files and over http (as in a browser) with the same predictions. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { selectBackend } from '../src/training/backends/select.js';
import { loadData } from '../src/training/data/load.js';
import { TfjsNet } from '../src/training/engines/tfjs.js';
import { loadTrained, saveTrained } from '../src/training/save.js';
import { train } from '../src/training/train.js';

before(async () => {
  await selectBackend('auto');
});

test('save then load: same predictions from files and over http, metadata beside the model', async () => {
  const spec = buildNet({ family: 'resnet20', input: [12, 12, 1], classes: 3 });
  const widths = keepWidths(spec, 0.25);
  const net = new TfjsNet(spec, widths, 7, { momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const model = net.model;
  // One short epoch so weights and BN running statistics differ from their initial values.
  const data = loadData({ name: 'synthetic', samples: 96 }, { shape: [12, 12, 1], classes: 3 });
  const outcome = await train(
    net,
    data,
    { epochs: 1, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0.1 },
    7,
  );
  assert.equal(outcome.status, 'complete');
  const dir = join(mkdtempSync(join(tmpdir(), 'prunespace-save-')), 'model');
  const c = complexity(spec, widths);
  await saveTrained(model, dir, {
    net: spec.ref,
    widths,
    groups: spec.groups.map((g) => g.name),
    complexity: c,
    metrics: { valError: outcome.valError, testError: outcome.testError },
    seed: 7,
    savedAt: new Date().toISOString(),
  });

  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.equal(modelJson.format, 'layers-model');
  assert.deepEqual(modelJson.weightsManifest[0].paths, ['weights.bin']);
  const layerClasses = new Set(modelJson.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name));
  for (const cls of layerClasses) assert.ok(['InputLayer', 'Conv2D', 'BatchNormalization', 'ReLU', 'Add', 'GlobalAveragePooling2D', 'Dense'].includes(cls as string), `stock layer ${cls}`);

  const x = tf.randomNormal([5, 12, 12, 1], 0, 1, 'float32', 3);
  const expected = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  const { model: fromFiles, metadata } = await loadTrained(dir);
  assert.deepEqual(metadata.widths, widths);
  assert.equal(metadata.complexity.params, c.params);
  assert.equal(metadata.metrics.testError, outcome.testError);
  const close = (m: tf.LayersModel) => {
    const got = (m.predict(x) as tf.Tensor).arraySync() as number[][];
    got.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - expected[i][j]) < 1e-5, `${v} vs ${expected[i][j]}`)));
  };
  close(fromFiles);

  // The browser path: tf.loadLayersModel over http from the same two files.
  const server = createServer((req, res) => {
    try {
      res.end(readFileSync(join(dir, (req.url ?? '/').slice(1))));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const fromHttp = await tf.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
    close(fromHttp);
    fromHttp.dispose();
  } finally {
    server.close();
  }
  fromFiles.dispose();
  model.dispose();
  x.dispose();
});
