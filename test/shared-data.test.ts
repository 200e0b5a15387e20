/** The thread pool lends its threads one read-only dataset in shared memory: no copy per thread, the same results. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThreadPool } from '../src/campaign/thread-pool.js';
import type { TrialTask } from '../src/campaign/executor.js';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { adoptSharedRaw, clearDataCache, loadData, loadSharedRaw } from '../src/training/data/load.js';
import { runTrial } from '../src/training/trial.js';
import type { TrialRequest, TrialResult } from '../src/training/types.js';
import { tinySettings } from './campaign-helpers.js';

const net = { family: 'resnet20' as const, input: [8, 8, 1] as [number, number, number], classes: 3 };
const widths = keepWidths(buildNet(net), 0.25);
const request = (seed: number, over: Partial<TrialRequest['settings']> = {}): TrialRequest => ({ net, widths, seed, settings: { ...tinySettings(96, 1), ...over } });
const task = (req: TrialRequest): TrialTask => ({ job: undefined as unknown as TrialTask['job'], request: req });
const hooks = { onEpoch: () => {} };

function learned(r: TrialResult): unknown {
  assert.equal(r.status, 'complete', r.error);
  return { valError: r.valError, valLoss: r.valLoss, trainLoss: r.trainLoss, testLoss: r.testLoss, steps: r.steps };
}

test('an adopted shared dataset prepares the same splits as one decoded in the thread', () => {
  const settings = { name: 'synthetic' as const, samples: 80 };
  const hints = { shape: [8, 8, 1] as [number, number, number], classes: 3 };
  clearDataCache();
  const own = loadData(settings, hints);
  assert.ok(!(own.train.source.images.buffer instanceof SharedArrayBuffer));
  clearDataCache();
  const shared = loadSharedRaw(settings, hints);
  assert.ok(shared.raw.train.images.buffer instanceof SharedArrayBuffer);
  adoptSharedRaw(shared);
  const lent = loadData(settings, hints);
  assert.equal(lent.train.source, shared.raw.train, 'the thread reads the shared pixels in place');
  assert.deepEqual(lent.train.indices, own.train.indices);
  assert.deepEqual(lent.mean, own.mean);
  assert.deepEqual(lent.std, own.std);
  assert.deepEqual([...lent.train.source.images], [...own.train.source.images]);
  assert.deepEqual([...lent.test.source.labels], [...own.test.source.labels]);
  assert.equal(loadSharedRaw(settings, hints).raw.train.images, shared.raw.train.images, 'a second pool reuses the shared memory');
  clearDataCache();
  // A thread that decoded the files already shares those pixels instead of decoding again.
  loadData(settings, hints);
  assert.deepEqual([...loadSharedRaw(settings, hints).raw.train.images], [...own.train.source.images]);
  clearDataCache();
});

test('two threads train on the pool\'s shared dataset and give the results of a trial run here', async () => {
  const pool = new ThreadPool({ workers: 2, trialModule: new URL('./shared-data-fixture.ts', import.meta.url).href });
  try {
    const seeds = [1, 2, 3];
    const signal = new AbortController().signal;
    const outcomes = await Promise.all(seeds.slice(0, 2).map((s) => pool.run(task(request(s)), hooks, signal)));
    outcomes.push(await pool.run(task(request(3)), hooks, signal));
    for (const [i, o] of outcomes.entries()) {
      assert.equal((o.result as TrialResult & { sharedPixels?: boolean }).sharedPixels, true, `trial ${i} read its own copy`);
      assert.deepEqual(learned(o.result), learned(await runTrial(request(seeds[i]))));
    }
  } finally {
    await pool.close();
    clearDataCache();
  }
});

test('data the coordinator cannot load is still the trial\'s input error, with its reason', async () => {
  const pool = new ThreadPool({ workers: 1, trialModule: new URL('./shared-data-fixture.ts', import.meta.url).href });
  try {
    const req = { ...request(1), settings: { ...tinySettings(96, 1), data: { name: 'fashion-mnist' as const, dir: '/nonexistent/fmnist' } } };
    const o = await pool.run(task(req), hooks, new AbortController().signal);
    assert.equal(o.inputError, true);
    assert.match(o.result.error!, /\/nonexistent\/fmnist/);
  } finally {
    await pool.close();
  }
});
