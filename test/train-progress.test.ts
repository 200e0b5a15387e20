/** Progress within an epoch: the step hook's live terminal line and plain lines, and the within-epoch curve points every trial records. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainProgress } from '../src/cli/train-progress.js';
import { CurvePointRecorder, POINTS_PER_EPOCH } from '../src/training/curve-points.js';
import type { StepProgress } from '../src/training/train.js';
import { runTrial } from '../src/training/trial.js';
import { tinySettings } from './campaign-helpers.js';

/** The hook calls of a run of `epochs` epochs of `perEpoch` steps, batch 4, loss falling from 2 by 0.01 a step. */
function steps(epochs: number, perEpoch: number, total = epochs * perEpoch): StepProgress[] {
  return Array.from({ length: total }, (_, i) => ({
    epoch: Math.floor(i / perEpoch) + 1, step: i + 1, totalSteps: total, stopStep: total, stepsPerEpoch: perEpoch,
    loss: 2 - 0.01 * i, wrong: i % 2, images: 4, seconds: 0.5 * (i + 1),
  }));
}

test('plain output: a line at each tenth of an epoch with steps, img/s, loss and ETA, none at the epoch end', () => {
  let text = '';
  const p = trainProgress({ write: (t) => (text += t), tty: false }, 2);
  for (const s of steps(2, 40)) p.onStep(s);
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 18, text); // 9 per epoch: the tenth at the epoch's end is the epoch line's
  assert.ok(!text.includes('\r'));
  assert.equal(lines[0], 'epoch 1/2  step 4/40 (4/80 in all)  8.0 img/s  loss 1.9850  ETA 38s of training');
  assert.equal(lines[17], 'epoch 2/2  step 36/40 (76/80 in all)  8.0 img/s  loss 1.2650  ETA 2s of training');
});

test('terminal output: one line redrawn in place, cleared before other output', () => {
  let text = '';
  let clock = 0;
  const p = trainProgress({ write: (t) => (text += t), tty: true, redrawMs: 1000, now: () => clock }, undefined);
  for (const s of steps(1, 10)) {
    clock += 300;
    p.onStep(s);
  }
  const draws = text.split('\r\x1b[K').filter(Boolean);
  // Redraws at most once a second of the clock (every 4th step of 300 ms), plus the epoch's last step.
  assert.deepEqual(draws.map((d) => d.match(/step (\d+)\//)![1]), ['1', '5', '9', '10']);
  assert.ok(!text.includes('\n'), 'no newline while the line is live');
  assert.match(draws[0], /^epoch 1  step 1\/10/);
  p.clear();
  assert.ok(text.endsWith('\r\x1b[K'));
});

test('curve points: eight per epoch, the mean of their steps, ending at the epoch boundary; a short run closes at its last step', () => {
  const r = new CurvePointRecorder();
  for (const s of steps(2, 16)) r.onStep(s);
  const first = r.take(1);
  assert.equal(first.length, POINTS_PER_EPOCH);
  assert.deepEqual(first.map((p) => p.epoch), [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]);
  assert.ok(Math.abs(first[0].trainLoss - (2 + 1.99) / 2) < 1e-12);
  assert.equal(first[0].trainError, 1 / 8);
  assert.equal(r.take(2).at(-1)!.epoch, 2);
  assert.deepEqual(r.take(1), [], 'taken points are forgotten');
  const short = new CurvePointRecorder();
  for (const s of steps(1, 16, 5)) short.onStep(s);
  assert.deepEqual(short.take(1).map((p) => p.epoch), [0.125, 0.25, 5 / 16]);
});

test('curve points of a run split into rungs: the first closes where it stops, the resumed one carries its few steps into the next eighth', () => {
  const all = steps(1, 64);
  const first = new CurvePointRecorder();
  for (const s of all.slice(0, 21)) first.onStep({ ...s, stopStep: 21 });
  assert.deepEqual(first.take(1).map((p) => p.epoch * 64), [8, 16, 21]);
  const resumed = new CurvePointRecorder();
  for (const s of all.slice(21)) resumed.onStep(s);
  const points = resumed.take(1);
  // Steps 22-24 end an eighth but are too few for a point of their own: the next point averages steps 22-32.
  assert.deepEqual(points.map((p) => p.epoch * 64), [32, 40, 48, 56, 64]);
  assert.ok(Math.abs(points[0].trainLoss - (2 - 0.01 * 26)) < 1e-12, 'the mean of steps 22 to 32');
});

test('runTrial stores the points in each epoch curve, with or without an epoch hook', async () => {
  const result = await runTrial({ net: { family: 'resnet20', input: [8, 8, 1], classes: 3 }, widths: [2, 4, 8, 2, 2, 2, 4, 4, 4, 8, 8, 8], settings: tinySettings(160, 2), seed: 1 });
  assert.equal(result.status, 'complete', result.error);
  assert.equal(result.curves.length, 2);
  for (const c of result.curves) {
    assert.ok(c.points && c.points.length >= 2, `points of epoch ${c.epoch}`);
    assert.equal(c.points.at(-1)!.epoch, c.epoch);
    for (const p of c.points) assert.ok(Number.isFinite(p.trainLoss) && p.trainError >= 0 && p.trainError <= 1);
  }
});
