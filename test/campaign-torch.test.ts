/** Campaigns on the torch engine: worker threads (the addon is safe there), results independent of the worker count. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCampaign } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import type { TrialRecord } from '../src/campaign/types.js';
import { torchAddon } from '../src/training/engines/torch.js';
import { cli, tempDir, tinyFlags, tinySettings, trials, writeTinySpace } from './campaign-helpers.js';

const { addon, problem } = torchAddon();
const skip = addon ? false : `torch addon not built: ${problem}`;

test('a torch campaign gives the same results on one worker thread and on two', { skip }, async () => {
  const make = (label: string) => {
    const dir = tempDir(label);
    return prepareCampaign({ spacePath: writeTinySpace(dir), outDir: join(dir, 'run'), samples: 4, seed: 3, settings: { ...tinySettings(), backend: 'torch', threads: 1 }, maxAttempts: 1, saveModels: false }).dir;
  };
  const [one, two] = [make('torch-w1'), make('torch-w2')];
  await runCampaign(one, { workers: 1, progress: { quiet: true } });
  const summary = await runCampaign(two, { workers: 2, progress: { quiet: true } });
  assert.equal(summary.slots, 2);
  const [a, b] = [trials(one), trials(two)];
  assert.ok(a.every((t) => t.state === 'complete' && t.backend === 'torch'), JSON.stringify(a.map((t) => t.error)));
  const key = (t: TrialRecord) => ({ widths: t.widths, seed: t.seed, valError: t.valError, trainLoss: t.curves[0]?.trainLoss });
  assert.deepEqual(a.map(key), b.map(key));
  assert.equal(new Set(b.map((t) => t.worker)).size, 2, 'both workers trained');
});

test('search --backend torch --threads 1 runs from the command line', { skip }, () => {
  const dir = tempDir('torch-cli');
  const flags = tinyFlags().map((f) => (f === 'wasm' ? 'torch' : f));
  const r = cli(['search', writeTinySpace(dir), '--samples', '2', '--workers', '1', '--out', join(dir, 'run'), ...flags, '--threads', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(trials(join(dir, 'run')).every((t) => t.state === 'complete' && t.backend === 'torch'));
});
