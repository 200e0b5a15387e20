/** A distilling campaign over the queue: workers find the parent under --runs-dir and route its trials to the distillation. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openCampaign } from '../src/campaign/store.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { runTrial } from '../src/training/trial.js';
import { cliProcess, exited, TINY_SPACE, tempDir, tinyFlags, tinySettings, writeTinySpace } from './campaign-helpers.js';
import { RedisServer, startWorker, stopProcess } from './queue-helpers.js';

process.env.PRUNESPACE_QUEUE_LOCK_MS = '3000';
process.env.PRUNESPACE_QUEUE_POLL_MS = '100';

let redis: RedisServer;
before(async () => (redis = await RedisServer.start()));
after(async () => redis?.stop());

test('distill over the queue: a worker without the parent refuses the campaign; one with --runs-dir distils every trial', { timeout: 180_000 }, async () => {
  const root = tempDir('queue-distill');
  const spec = buildNet({ ...TINY_SPACE.network, input: [8, 8, 1], classes: 3 });
  const parent = join(root, 'given');
  const trained = await runTrial({ net: spec.ref, widths: baseWidths(spec), settings: tinySettings(), seed: 3, saveDir: parent });
  assert.equal(trained.status, 'complete', trained.error);
  const out = join(root, 'run');
  const run = cliProcess(['search', writeTinySpace(root), '--out', out, '--samples', '2', ...tinyFlags(), '--queue', redis.url,
    '--train', 'distill', '--parent', parent, '--students', '1', '--save-models', '--reference-seeds', '1']);
  let stderr = '';
  run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const models = join(root, 'worker-models');
  const lost = startWorker(redis.url, ['--runs-dir', join(root, 'elsewhere'), '--wait-for-campaign', '120']);
  let good: ReturnType<typeof startWorker> | undefined;
  try {
    const refused = await exited(lost.child);
    assert.equal(refused.code, 2, lost.stderr());
    assert.match(lost.stderr(), /campaign run starts from its parent, which this host does not have at .*elsewhere\/run\/parent; copy .* or pass --runs-dir/);
    good = startWorker(redis.url, ['--runs-dir', root, '--models-dir', models]);
    const { code } = await exited(run);
    assert.equal(code, 0, stderr + good.stderr());
    const r = openCampaign(out, { readonly: true });
    const trials = r.trials();
    const inits = r.trialInits();
    r.close();
    // Two candidates and one seed of the uniform reference, which distils like them.
    assert.equal(trials.filter((t) => t.state === 'complete').length, 3, stderr);
    for (const t of trials) {
      assert.match(t.worker!, new RegExp(`/${good.child.pid}/`));
      // A new campaign names what its trials rank on: label-free agreement by default; the queue carries it.
      assert.deepEqual(inits.get(t.index), { mode: 'distill', parent: 'parent', students: 1, rankOn: 'agreement' });
      assert.equal(t.metrics?.rankedOn, 'agreement');
      assert.equal(t.valError, t.metrics?.valDisagreement);
      // The worker ran the distillation: its saved model says so, at the sampled widths.
      const meta = JSON.parse(readFileSync(join(models, 'run', `trial-${t.index}`, 'prunespace.json'), 'utf8'));
      assert.equal(meta.method, 'distill');
      // The sampled widths are the sparsity target; a channel a zero-pad shortcut still feeds stays, so a group may keep more.
      meta.widths.forEach((w: number, g: number) => assert.ok(w >= t.widths[g] && w <= baseWidths(spec)[g], `group ${g}: ${w} for target ${t.widths[g]}`));
    }
  } finally {
    await Promise.all([stopProcess(lost.child), stopProcess(run), ...(good ? [stopProcess(good.child)] : [])]);
  }
});
