/**
 * Queue workers on hosts that cannot run every campaign (a real redis-server on loopback, real worker processes): a
 * host without the torch addon refuses in one line at start, and one already running hands a torch campaign's jobs
 * back to the queue, so the campaign completes on the host that can run it instead of failing or stopping.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openCampaign } from '../src/campaign/store.js';
import { torchAddonBuilt } from '../src/training/engines/torch.js';
import { cliProcess, exited, ROOT, tempDir, tinyFlags, writeTinySpace } from './campaign-helpers.js';
import { RedisServer, startWorker, stopProcess } from './queue-helpers.js';

process.env.PRUNESPACE_QUEUE_LOCK_MS = '3000';
process.env.PRUNESPACE_QUEUE_POLL_MS = '100';
const MAIN = join(ROOT, 'src/cli/main.ts');
/** This environment hides the torch addon: the worker's host cannot run torch. */
const NO_TORCH = { ...process.env, PRUNESPACE_TORCH_ADDON: '' };
const skip = torchAddonBuilt() ? false : 'torch addon not built';

let redis: RedisServer;
before(async () => (redis = await RedisServer.start()));
after(async () => redis?.stop());

function hiddenWorker(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--queue', redis.url, '--workers', '1', ...args], { cwd: ROOT, env: NO_TORCH, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, output: () => stderr };
}

test('a worker that cannot run torch refuses a queued torch campaign in one line at start', { skip, timeout: 60_000 }, async () => {
  const c = redis.client();
  const entry = { id: 'fedcbafedcba', name: 'needs-torch', dataset: 'synthetic', backend: 'torch', updatedAt: new Date().toISOString() };
  await c.hset('prunespace:campaigns', entry.id, JSON.stringify(entry));
  try {
    const w = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--queue', redis.url, '--wait-for-campaign', '0'], { cwd: ROOT, env: NO_TORCH, encoding: 'utf8' });
    assert.equal(w.status, 2, w.stderr);
    assert.equal(w.stderr.trim().split('\n').length, 1, w.stderr);
    assert.match(w.stderr, /campaign needs-torch trains on torch, which this host cannot run \(the torch addon is not built/);
  } finally {
    await c.hdel('prunespace:campaigns', entry.id);
    c.disconnect();
  }
});

test('a torch campaign with one worker that cannot run torch: its jobs go to the other worker, every trial completes once', { skip, timeout: 240_000 }, async () => {
  // The torch-less worker starts first, before the campaign exists, so it is up and taking jobs.
  const hidden = hiddenWorker(['--wait-for-campaign', '0']);
  const root = tempDir('queue-hosts');
  const out = join(root, 'run');
  const flags = tinyFlags(64, 1).map((f) => (f === 'wasm' ? 'torch' : f));
  const run = cliProcess(['search', writeTinySpace(root), '--out', out, '--samples', '4', ...flags, '--queue', redis.url, '--no-reference']);
  let stderr = '';
  run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // The torch-capable worker joins a few seconds later: by then the other has been offered jobs.
  await new Promise((r) => setTimeout(r, 6000));
  const good = startWorker(redis.url, ['--wait-for-campaign', '0']);
  try {
    const { code } = await exited(run);
    assert.equal(code, 0, stderr);
    const r = openCampaign(out, { readonly: true });
    const trials = r.trials();
    r.close();
    assert.equal(trials.length, 4);
    for (const t of trials) {
      assert.equal(t.state, 'complete', `trial ${t.index}: ${t.error}`);
      assert.equal(t.attempts, 1, `trial ${t.index} was not retried as a failure`);
      assert.equal(t.backend, 'torch');
      assert.match(t.worker!, new RegExp(`/${good.child.pid}/`), `trial ${t.index} ran on the worker that has torch`);
    }
    assert.match(hidden.output(), /trains on torch, which this host cannot run .*; its trials are left to other workers/);
    assert.equal(hidden.output().match(/which this host cannot run/g)!.length, 1, 'said once');
    assert.equal(hidden.child.exitCode, null, 'the torch-less worker is still serving');
  } finally {
    await Promise.all([stopProcess(hidden.child), stopProcess(good.child), stopProcess(run)]);
  }
});
