/** The campaign store and coordinator in-process: determinism across worker counts, crashes, the process pool. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCampaign, trialModelDir } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import { openCampaign } from '../src/campaign/store.js';
import type { TrialRecord } from '../src/campaign/types.js';
import { deriveSeed } from '../src/util/rng.js';
import { tempDir, tinySettings, trials, writeTinySpace } from './campaign-helpers.js';

const quiet = { progress: { quiet: true } };

function newCampaign(label: string, samples: number, seed = 7, maxAttempts = 2, saveModels = false): string {
  const dir = tempDir(label);
  const spacePath = writeTinySpace(dir);
  return prepareCampaign({ spacePath, outDir: join(dir, 'run'), samples, seed, settings: tinySettings(), maxAttempts, saveModels }).dir;
}

test('candidates, trial seeds and results do not depend on the number of workers', async () => {
  const one = newCampaign('w1', 4);
  const two = newCampaign('w2', 4);
  await runCampaign(one, { ...quiet, workers: 1 });
  const summary = await runCampaign(two, { ...quiet, workers: 2 });
  assert.equal(summary.slots, 2);
  const [a, b] = [trials(one), trials(two)];
  assert.equal(a.length, 4);
  assert.ok(a.every((t) => t.state === 'complete' && t.curves.length === 1 && t.attempts === 1));
  const key = (t: TrialRecord) => ({ index: t.index, widths: t.widths, seed: t.seed, complexity: t.complexity, valError: t.valError });
  assert.deepEqual(a.map(key), b.map(key));
  assert.deepEqual(a.map((t) => t.seed), [0, 1, 2, 3].map((i) => deriveSeed(7, i)));
  assert.equal(new Set(b.map((t) => t.worker)).size, 2, 'both workers trained');
});

test('the store holds the configuration and round, and exports one CSV column per channel group', async () => {
  const dir = newCampaign('store', 2, 7, 2, true);
  await runCampaign(dir, { ...quiet, workers: 1 });
  const reader = openCampaign(dir, { readonly: true });
  const config = reader.config();
  const [round] = reader.rounds();
  reader.close();
  assert.equal(config.backend, 'wasm');
  assert.equal(config.groups.length, 12);
  assert.ok(config.versions['@tensorflow/tfjs'] && config.versions.node);
  assert.equal(round.round, 0);
  assert.equal(round.sampleSeed, 7);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, round.spaceFile), 'utf8')), round.space);
  const [header, ...rows] = readFileSync(join(dir, 'trials.csv'), 'utf8').trim().split('\n');
  assert.ok(header.split(',').includes('stage2.block3.conv1'));
  assert.equal(rows.length, 2);
  assert.equal(readFileSync(join(dir, 'trials.jsonl'), 'utf8').trim().split('\n').length, 2);
  assert.ok(existsSync(join(trialModelDir(dir, 1), 'model.json')), 'the trained subnetwork is saved');
});

test('a store left mid-trial by a dead coordinator reruns that trial and keeps completed ones', async () => {
  const dir = newCampaign('recover', 3);
  // What a kill -9 leaves behind: one trial marked running under an attempt nobody will finish.
  const store = openCampaign(dir);
  store.start(1, { worker: 'thread-9', leaseMs: 60_000, maxAttempts: 2 });
  store.close();
  await runCampaign(dir, { ...quiet, workers: 1 });
  const after = trials(dir);
  assert.deepEqual(after.map((t) => t.state), ['complete', 'complete', 'complete']);
  // The attempt cut short by the "crash" does not count.
  assert.equal(after[1].attempts, 1);
  await runCampaign(dir, { ...quiet, workers: 1 });
  assert.deepEqual(trials(dir).map((t) => t.finishedAt), after.map((t) => t.finishedAt), 'completed trials are never retrained');
});

for (const executor of ['thread', 'process'] as const) {
  test(`a worker that crashes (${executor}) fails only its trial, with the reason, after --max-attempts`, async () => {
    process.env.CAMPAIGN_CRASH = 'exit';
    const dir = newCampaign(`crash-${executor}`, 6, 11, 2);
    const trialModule = new URL('./campaign-crash-fixture.ts', import.meta.url).href;
    await runCampaign(dir, { ...quiet, workers: 2, executor, trialModule });
    const all = trials(dir);
    const doomed = all.filter((t) => t.seed % 3 === 0);
    assert.ok(doomed.length > 0 && doomed.length < all.length, 'the seed makes some but not all trials crash');
    for (const t of all) {
      if (t.seed % 3 === 0) {
        assert.equal(t.state, 'failed');
        assert.equal(t.attempts, 2);
        assert.match(t.error!, executor === 'process' ? /worker process exited with code 3/ : /worker thread crashed/);
      } else {
        assert.equal(t.state, 'complete', `trial ${t.index}: ${t.error}`);
      }
    }
    if (executor === 'process') assert.ok(all.every((t) => /^proc\d-pid\d+$/.test(t.worker!)));
    // Resuming with a larger budget retries exactly the failed trials.
    await runCampaign(dir, { ...quiet, workers: 2, executor, trialModule, maxAttempts: 3 });
    assert.ok(trials(dir).filter((t) => t.state === 'failed').every((t) => t.attempts === 3));
  });
}

test('a worker thread that runs out of memory fails its trial and the campaign goes on', async () => {
  process.env.CAMPAIGN_CRASH = 'oom';
  const dir = newCampaign('oom', 4, 11, 1);
  const trialModule = new URL('./campaign-crash-fixture.ts', import.meta.url).href;
  await runCampaign(dir, { ...quiet, workers: 1, trialModule, maxHeapMb: 64 });
  const all = trials(dir);
  assert.ok(all.some((t) => t.state === 'failed' && /out of memory/.test(t.error!)));
  assert.ok(all.some((t) => t.state === 'complete'));
});

test('--gpus starts one child process per GPU, pinned with CUDA_VISIBLE_DEVICES and memory growth on', async () => {
  const dir = newCampaign('gpus', 6, 7, 1);
  const trialModule = new URL('./campaign-env-fixture.ts', import.meta.url).href;
  const summary = await runCampaign(dir, { ...quiet, executor: 'process', gpus: ['3', '5'], trialModule });
  assert.equal(summary.slots, 2);
  const all = trials(dir);
  const byGpu = new Map<string, string>();
  for (const t of all) byGpu.set(t.worker!.replace(/-pid\d+$/, ''), t.error!);
  assert.deepEqual([...byGpu.keys()].sort(), ['gpu3', 'gpu5']);
  assert.equal(byGpu.get('gpu3'), 'CUDA_VISIBLE_DEVICES=3 TF_FORCE_GPU_ALLOW_GROWTH=true');
  assert.equal(byGpu.get('gpu5'), 'CUDA_VISIBLE_DEVICES=5 TF_FORCE_GPU_ALLOW_GROWTH=true');
});

for (const executor of ['thread', 'process'] as const) {
  test(`--trial-timeout (${executor}) cancels a trial that runs too long; it fails with the reason and the rest complete`, { timeout: 120_000 }, async () => {
    const dir = newCampaign(`timeout-${executor}`, 4, 5, 1);
    const trialModule = new URL('./campaign-slow-fixture.ts', import.meta.url).href;
    await runCampaign(dir, { ...quiet, workers: 2, executor, trialModule, trialTimeoutMs: 20_000 });
    const all = trials(dir);
    const slow = all.filter((t) => t.seed % 2 === 1);
    assert.ok(slow.length > 0 && slow.length < all.length, 'the seed makes some but not all trials hang');
    for (const t of all) {
      if (t.seed % 2 === 1) {
        assert.equal(t.state, 'failed');
        assert.match(t.error!, /^cancelled: timed out after 20s/);
      } else assert.equal(t.state, 'complete', `trial ${t.index}: ${t.error}`);
    }
  });
}
