/** The training loop: seeded, leak-free, learns, fails cleanly on a diverging loss; runTrial's input errors. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { selectBackend } from '../src/training/backends/select.js';
import { learningRate } from '../src/training/train.js';
import { runTrial } from '../src/training/trial.js';
import type { EpochCurve, TrainSettings, TrialRequest } from '../src/training/types.js';
import { UserError } from '../src/util/errors.js';

before(async () => {
  await selectBackend('auto');
});

const spec = buildNet({ family: 'resnet20', input: [16, 16, 1], classes: 4 });
const settings: TrainSettings = {
  data: { name: 'synthetic', samples: 512 },
  epochs: 3,
  batchSize: 32,
  lr: 0.1,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  warmupEpochs: 0.5,
  labelSmoothing: 0,
  // The tfjs engine: tensor counts are its leak check (the torch engine's own tests are in engine-torch.test.ts).
  backend: 'wasm',
};
const request = (over: Partial<TrialRequest> = {}, s: Partial<TrainSettings> = {}): TrialRequest => ({
  net: spec.ref,
  widths: keepWidths(spec, 0.25),
  seed: 11,
  settings: { ...settings, ...s },
  ...over,
});

test('warmup rises linearly, then cosine decays to zero at the last step', () => {
  assert.equal(learningRate(0, 100, 10, 1), 0.1);
  assert.equal(learningRate(9, 100, 10, 1), 1);
  assert.equal(learningRate(10, 100, 10, 1), 1);
  assert.ok(Math.abs(learningRate(55, 100, 10, 1) - 0.5) < 1e-12);
  assert.ok(learningRate(99, 100, 10, 1) < 0.001);
  assert.equal(learningRate(0, 100, 0, 0.2), 0.2);
});

test('no tensor leaks across epochs; the net learns; curves are complete', async () => {
  const counts: number[] = [];
  const curves: EpochCurve[] = [];
  const result = await runTrial(request(), (c) => {
    counts.push(tf.memory().numTensors);
    curves.push(c);
  });
  assert.equal(result.status, 'complete', result.error);
  assert.deepEqual(counts, [counts[0], counts[0], counts[0]], `tensors after each epoch: ${counts}`);
  assert.deepEqual(result.curves, curves);
  assert.equal(result.curves.length, 3);
  assert.equal(result.steps, 3 * Math.floor((512 - 51) / 32));
  // Chance error is 75% on 4 balanced classes.
  assert.ok(result.testError! < 0.4, `test error ${result.testError}`);
  assert.ok(result.curves[2].trainLoss < result.curves[0].trainLoss);
  for (const c of result.curves) for (const v of Object.values(c)) assert.ok(Number.isFinite(v));
  assert.ok(result.imagesPerSecond! > 0);
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(result.backend));
});

test('one seed fixes initialisation and data order: same seed, same losses; another seed, other losses', async () => {
  const short = { epochs: 1, steps: 4 };
  const a = await runTrial(request({}, short));
  const b = await runTrial(request({}, short));
  const c = await runTrial(request({ seed: 12 }, short));
  assert.equal(a.steps, 4);
  assert.deepEqual(a.curves.map((x) => [x.trainLoss, x.valLoss]), b.curves.map((x) => [x.trainLoss, x.valLoss]));
  assert.equal(a.testError, b.testError);
  assert.notEqual(a.curves[0].trainLoss, c.curves[0].trainLoss);
});

test('a diverging loss ends the trial as failed with the reason, without throwing', async () => {
  const r = await runTrial(request({}, { lr: 1e12, epochs: 2, warmupEpochs: 0 }));
  assert.equal(r.status, 'failed');
  assert.match(r.error!, /training loss became (NaN|infinite) at epoch \d+, step \d+ \(lr /);
  assert.equal(r.testError, undefined);
});

test('bad input is a UserError: widths, settings, data that does not fit the net', async () => {
  const isUser = (re: RegExp) => (e: unknown) => e instanceof UserError && re.test(e.message);
  await assert.rejects(runTrial(request({ widths: [1, 2] })), isUser(/has 12 channel groups, got 2 widths/));
  await assert.rejects(runTrial(request({}, { batchSize: 0 })), isUser(/batch size must be an integer >= 1/));
  await assert.rejects(runTrial(request({}, { momentum: 1 })), isUser(/momentum must be in \[0, 1\)/));
  await assert.rejects(
    runTrial(request({}, { data: { name: 'fashion-mnist', dir: '/nonexistent/fashion' } })),
    isUser(/\/nonexistent\/fashion: no such directory/),
  );
  await assert.rejects(runTrial(request({}, { data: { name: 'synthetic', subset: 2 } })), isUser(/--subset must be in/));
});
