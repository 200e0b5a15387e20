/** Label-free distillation with dynamic sparsity over the tfjs engine: the target is met on the materialised model, no label is read, bad input fails cleanly. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { complexity } from '../src/complexity/count.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { DEFAULT_WEIGHTS } from '../src/pruning/distill/losses.js';
import { distill, type DistillSettings, type Parent } from '../src/pruning/distill/distill.js';
import { materialise, saveMaterialised } from '../src/pruning/distill/save.js';
import { loadData } from '../src/training/data/load.js';
import type { PreparedData } from '../src/training/data/types.js';
import type { Engine, WeightSet } from '../src/training/engine.js';
import { selectEngine } from '../src/training/engines/select.js';
import { readLayersWeights } from '../src/training/engines/layers-weights.js';
import { fileLoadHandler, METADATA_JSON, saveNet } from '../src/training/save.js';
import { runDistillTrial } from '../src/pruning/distill/trial.js';
import { train } from '../src/training/train.js';
import { isUserError } from '../src/util/errors.js';
import { readFileSync } from 'node:fs';

const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
const widths = baseWidths(spec);
const optimizer = { momentum: 0.9, nesterov: false, weightDecay: 5e-4 };
let engine: Engine;
let data: PreparedData;
let parent: Parent;
const dir = mkdtempSync(join(tmpdir(), 'distill-'));

const settings = (over: Partial<DistillSettings> = {}): DistillSettings => ({
  students: 2,
  epochs: 2,
  batchSize: 32,
  lr: 0.05,
  optimizer,
  weights: DEFAULT_WEIGHTS,
  target: { flops: 0.5 * complexity(spec, widths).flops },
  reselectEvery: 4,
  sensitivityBatches: 1,
  bnBatches: 2,
  ...over,
});

before(async () => {
  engine = (await selectEngine('auto')).engine;
  data = loadData({ name: 'synthetic', samples: 320 }, { shape: [8, 8, 1], classes: 4 });
  const net = await engine.build(spec, widths, 3, optimizer);
  const r = await train(net, data, { epochs: 2, batchSize: 32, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0 }, 3);
  assert.equal(r.status, 'complete');
  parent = { spec, widths, weights: await net.readWeights() };
  await saveNet(net, join(dir, 'parent'), { net: spec.ref, widths, groups: spec.groups.map((g) => g.name), complexity: complexity(spec, widths), metrics: {}, seed: 3, savedAt: '' });
  net.dispose();
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The same images with every training, validation and test label replaced by a seeded scramble. */
function scrambled(d: PreparedData): PreparedData {
  const relabel = (s: PreparedData['train']) => {
    const labels = s.source.labels.map((l, i) => (l * 7 + i * 13 + 1) % d.classes);
    return { ...s, source: { ...s.source, labels } };
  };
  return { ...d, train: relabel(d.train), val: relabel(d.val), test: relabel(d.test) };
}

function sameWeights(a: WeightSet, b: WeightSet): boolean {
  if (a.size !== b.size) return false;
  for (const [n, t] of a) {
    const u = b.get(n);
    if (!u || u.data.length !== t.data.length) return false;
    for (let i = 0; i < t.data.length; i++) if (!Object.is(t.data[i], u.data[i])) return false;
  }
  return true;
}

test('distillation meets a FLOPs target within 2% on the materialised model, which computes what the sparse student computes', async () => {
  const epochs: number[] = [];
  const s = settings();
  const out = await distill(engine, parent, data, s, 5, (e) => {
    epochs.push(e.epoch);
    assert.equal(e.students.length, 2);
    for (const st of e.students) {
      assert.ok(Number.isFinite(st.loss) && Number.isFinite(st.valDistill));
      assert.equal(st.chosen.length, spec.groups.length);
      assert.ok(st.projectedFlops <= (s.target as { flops: number }).flops);
    }
  });
  assert.equal(out.status, 'complete', out.error);
  assert.deepEqual(epochs, [1, 2]);
  const target = (s.target as { flops: number }).flops;
  const m = materialise(spec, widths, out.weights!, out.kept!);
  assert.deepEqual(m.widths, out.widths);
  const flops = complexity(spec, m.widths).flops;
  assert.ok(Math.abs(flops - target) / target <= 0.02, `materialised FLOPs ${flops} against target ${target}`);
  // The ISTA term really sparsified: some chosen channel reached zero before the final projection.
  const last = epochs.length && out.curves[out.curves.length - 1].students[out.best!];
  assert.ok(last && last.zero.reduce((a, b) => a + b, 0) > 0, 'no channel reached zero during training');

  const save = join(dir, 'student');
  const meta = await saveMaterialised(spec, m, save, { method: 'distill', parent: { dir: 'parent', widths }, kept: out.kept!, metrics: {}, seed: 5 });
  assert.equal(meta.complexity.flops, flops);
  const onDisk = JSON.parse(readFileSync(join(save, METADATA_JSON), 'utf8'));
  assert.deepEqual(onDisk.kept, out.kept);
  // The stock model loads and gives the full-width sparse student's logits (zero-pad shortcuts included).
  const loaded = await tf.loadLayersModel(fileLoadHandler(save));
  const full = await engine.build(spec, widths, 5, optimizer);
  await full.writeWeights(out.weights!);
  const x = new Float32Array(4 * 64).map((_, i) => Math.sin(i));
  const ref = (await full.forward({ x, size: 4 }, { training: false })).logits;
  const got = tf.tidy(() => (loaded.predict(tf.tensor4d(x, [4, 8, 8, 1])) as tf.Tensor).dataSync());
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - got[i]) < 1e-4, `logit ${i}: ${ref[i]} vs ${got[i]}`);
  assert.equal(readLayersWeights(loaded, spec).size > 0, true);
  full.dispose();
  loaded.dispose();
});

test('no label is read: scrambled labels give bit-identical weights', async () => {
  const s = settings({ epochs: 1, students: 2 });
  const a = await distill(engine, parent, data, s, 9);
  const b = await distill(engine, parent, scrambled(data), s, 9);
  assert.equal(a.status, 'complete');
  assert.equal(b.status, 'complete');
  assert.ok(sameWeights(a.weights!, b.weights!), 'weights differ between true and scrambled labels');
  assert.deepEqual(a.kept, b.kept);
  // And the scramble really changed labels.
  assert.notDeepEqual(scrambled(data).train.source.labels, data.train.source.labels);
});

test('a pruning rate removes that share of channels', async () => {
  const out = await distill(engine, parent, data, settings({ epochs: 1, students: 1, target: { rate: 0.3 } }), 2);
  assert.equal(out.status, 'complete', out.error);
  const total = widths.reduce((a, b) => a + b, 0);
  const removed = total - out.widths!.reduce((a, b) => a + b, 0);
  assert.ok(removed >= Math.ceil(0.3 * total), `removed ${removed} of ${total}`);
});

test('bad input: N < 1, unreachable target, non-finite parent weights; a diverging run fails with its reason', async () => {
  await assert.rejects(distill(engine, parent, data, settings({ students: 0 }), 1), (e) => isUserError(e) && /students/.test(e.message));
  await assert.rejects(distill(engine, parent, data, settings({ target: { flops: 1 } }), 1), (e) => isUserError(e) && /out of reach/.test(e.message));
  const broken = new Map(parent.weights);
  const fc = broken.get('fc/kernel')!;
  broken.set('fc/kernel', { shape: fc.shape, data: fc.data.map(() => NaN) });
  await assert.rejects(distill(engine, { ...parent, weights: broken }, data, settings(), 1), (e) => isUserError(e) && /non-finite/.test(e.message));
  const out = await distill(engine, parent, data, settings({ lr: 1e6, epochs: 2 }), 1);
  assert.equal(out.status, 'failed');
  assert.match(out.error!, /student \d became (NaN|infinite|finite with non-finite gradients) at epoch \d, step \d+/);
});

test('a campaign trial in distill mode drives the parent to the sampled widths and evaluates the result', async () => {
  const sampled = widths.map((w) => Math.max(1, Math.round(w * 0.5)));
  const curves: unknown[] = [];
  const r = await runDistillTrial(
    {
      net: spec.ref,
      widths: sampled,
      seed: 4,
      settings: { data: { name: 'synthetic', samples: 320 }, epochs: 1, batchSize: 32, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0, backend: 'auto' },
      init: { mode: 'distill', parent: join(dir, 'parent'), students: 1 },
      saveDir: join(dir, 'trial'),
    },
    (c) => curves.push(c),
  );
  assert.equal(r.status, 'complete', r.error);
  assert.equal(curves.length, 1);
  assert.ok(r.valError! >= 0 && r.valError! <= 1 && r.testError! >= 0);
  const meta = JSON.parse(readFileSync(join(dir, 'trial', METADATA_JSON), 'utf8'));
  assert.deepEqual(meta.widths, sampled);
});
