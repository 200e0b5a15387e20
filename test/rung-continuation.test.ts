/**
 * Rung-by-rung training resumed from checkpoints (weights, BN statistics, momentum, data position) equals one run at
 * the final budget, on the tfjs cpu engine and on the torch engine.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { selectBackend } from '../src/training/backends/select.js';
import { torchAddon } from '../src/training/engines/torch.js';
import { WEIGHTS_BIN } from '../src/training/save.js';
import { rungStopSteps } from '../src/training/train.js';
import { runTrial } from '../src/training/trial.js';
import type { TrainSettings, TrialRequest, TrialResult } from '../src/training/types.js';
import { UserError } from '../src/util/errors.js';

before(async () => {
  await selectBackend('cpu');
});

const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 4 });
// 128 synthetic images: 115 train at batch 16 is 7 steps an epoch, 14 in all; rungs 3, eta 2 stop at 3 (mid-epoch), 7, 14.
const settings = (backend: TrainSettings['backend'], preciseBn = 0): TrainSettings => ({
  data: { name: 'synthetic', samples: 128, augment: true },
  epochs: 2,
  batchSize: 16,
  lr: 0.1,
  momentum: 0.9,
  nesterov: backend === 'torch',
  weightDecay: 5e-4,
  warmupEpochs: 0.5,
  labelSmoothing: 0.1,
  backend,
  ...(preciseBn ? { preciseBn } : {}),
});

function request(backend: TrainSettings['backend'], saveDir: string, rung?: TrialRequest['rung'], preciseBn = 0): TrialRequest {
  return { net: spec.ref, widths: keepWidths(spec, 0.25), seed: 5, settings: settings(backend, preciseBn), saveDir, ...(rung ? { rung } : {}) };
}

function weights(dir: string): Float32Array {
  const b = readFileSync(join(dir, WEIGHTS_BIN));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

test('rung stops: the top rung is the whole run, rung 0 its 1/eta^(R-1)', () => {
  assert.deepEqual(rungStopSteps(14, 3, 2), [3, 7, 14]);
  assert.deepEqual(rungStopSteps(81, 3, 3), [9, 27, 81]);
  assert.deepEqual(rungStopSteps(5, 1, 3), [5]);
});

// Precise BN (2 batches) re-estimates the statistics before every evaluation: continuation stays exact with it.
for (const [backend, preciseBn] of [['cpu', 0], ['torch', 0], ['cpu', 2], ['torch', 2]] as const) {
  const skip = backend === 'torch' && !torchAddon().addon ? `torch addon not built: ${torchAddon().problem}` : false;
  const bn = preciseBn ? `, precise BN over ${preciseBn} batches` : '';
  test(`${backend}${bn}: three rungs continued from checkpoints train exactly as one run at the final budget`, { skip }, async () => {
    const root = mkdtempSync(join(tmpdir(), `prunespace-rungs-${backend}-`));
    const whole = await runTrial(request(backend, join(root, 'whole'), undefined, preciseBn));
    assert.equal(whole.status, 'complete', whole.error);
    const checkpoints = join(root, 'checkpoints');
    const parts: TrialResult[] = [];
    for (let rung = 0; rung < 3; rung++) {
      parts.push(await runTrial(request(backend, join(root, 'rungs'), { rung, rungs: 3, eta: 2, checkpoints }, preciseBn)));
      assert.equal(parts[rung].status, 'complete', parts[rung].error);
    }
    assert.deepEqual(parts.map((p) => p.steps), [3, 7, 14]);
    assert.deepEqual(parts.map((p) => p.images), [3 * 16, 4 * 16, 7 * 16]);
    const top = parts[2];
    assert.ok(Math.abs(top.trainLoss! - whole.trainLoss!) < 1e-4, `last epoch's train loss ${top.trainLoss} vs ${whole.trainLoss}`);
    assert.ok(Math.abs(top.valError! - whole.valError!) < 1e-9 || Math.abs(top.valError! - whole.valError!) <= 1 / 13 + 1e-9);
    const a = weights(join(root, 'whole'));
    const b = weights(join(root, 'rungs'));
    assert.equal(a.length, b.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-4, `largest weight difference ${worst}`);
    assert.ok(parts[0].curves.at(-1)!.epoch === 1 && parts[1].curves[0].epoch === 1, 'rung 1 finishes the epoch rung 0 stopped inside');
    // Rung 0 stopped at step 3 of 7: its validation and its last training point sit there, not at the epoch's end.
    assert.equal(parts[0].curves[0].epochs, 3 / 7);
    assert.equal(parts[0].curves[0].points!.at(-1)!.epoch, 3 / 7);
    assert.equal(parts[1].curves[0].epochs, undefined, 'rung 1 validates at the end of epoch 1');
    assert.equal(parts[1].curves[0].points!.at(-1)!.epoch, 1);
  });
}

for (const [backend, preciseBn] of [['cpu', 0], ['torch', 0], ['cpu', 2], ['torch', 2]] as const) {
  const skip = backend === 'torch' && !torchAddon().addon ? `torch addon not built: ${torchAddon().problem}` : false;
  const bn = preciseBn ? `, precise BN over ${preciseBn} batches` : '';
  test(`${backend}${bn}: a whole run that reports its lower rungs trains exactly as one that does not, and its rung 0 is a rung-0 candidate's`, { skip }, async () => {
    const root = mkdtempSync(join(tmpdir(), `prunespace-evalrungs-${backend}-`));
    const plain = await runTrial(request(backend, join(root, 'plain'), undefined, preciseBn));
    const probed = await runTrial({ ...request(backend, join(root, 'probed'), undefined, preciseBn), evalRungs: { rungs: 3, eta: 2 } });
    const rung0 = await runTrial(request(backend, join(root, 'rung0'), { rung: 0, rungs: 3, eta: 2, checkpoints: join(root, 'checkpoints') }, preciseBn));
    for (const r of [plain, probed, rung0]) assert.equal(r.status, 'complete', r.error);
    assert.equal(plain.lowerRungs, undefined);
    // Bit for bit: the mid-run evaluations change neither the weights nor the RNG streams.
    assert.equal(probed.valError, plain.valError);
    assert.equal(probed.testError, plain.testError);
    assert.equal(probed.trainLoss, plain.trainLoss);
    assert.deepEqual(weights(join(root, 'probed')), weights(join(root, 'plain')));
    assert.deepEqual(probed.lowerRungs!.map((r) => [r.rung, r.epochs, r.images]), [[0, 3 / 7, 3 * 16], [1, 1, 4 * 16]]);
    assert.equal(probed.lowerRungs![0].valError, rung0.valError);
    assert.equal(probed.lowerRungs![0].testError, rung0.testError);
    assert.ok(Math.abs(probed.lowerRungs![0].trainLoss - rung0.trainLoss!) < 1e-6);
  });
}

test('a rung with no step to train is bad input naming the rung', async () => {
  const root = mkdtempSync(join(tmpdir(), 'prunespace-rungs-none-'));
  await assert.rejects(
    runTrial({ ...request('cpu', join(root, 'm'), { rung: 0, rungs: 5, eta: 4, checkpoints: join(root, 'c') }) }),
    (e: Error) => e instanceof UserError && /rung 0 of 5 \(eta 4\) would train no step/.test(e.message),
  );
});
