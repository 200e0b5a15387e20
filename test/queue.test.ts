/** Distributed campaigns against a real redis-server on loopback: workers, failures, restarts and bad input. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { openCampaign } from '../src/campaign/store.js';
import { cli, cliProcess, exited, tempDir, tinyFlags, waitFor, writeTinySpace } from './campaign-helpers.js';
import { RedisServer, startWorker, stopProcess } from './queue-helpers.js';

// A worker silent for 3 s is presumed dead and its job runs elsewhere; coordinator polls every 100 ms.
process.env.PRUNESPACE_QUEUE_LOCK_MS = '3000';
process.env.PRUNESPACE_QUEUE_POLL_MS = '100';

let redis: RedisServer;
before(async () => (redis = await RedisServer.start({ persist: true })));
after(async () => redis?.stop());

function search(label: string, samples: number, extra: string[] = [], images = 256, epochs = 2) {
  const root = tempDir(label);
  const out = join(root, 'run');
  // No uniform reference unless a test asks for it: the counts below are of candidates.
  const reference = extra.includes('--reference-seeds') ? [] : ['--no-reference'];
  const child = cliProcess(['search', writeTinySpace(root), '--out', out, '--samples', String(samples), ...tinyFlags(images, epochs), '--queue', redis.url, ...reference, ...extra]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, out, stderr: () => stderr };
}

function store(out: string) {
  const r = openCampaign(out, { readonly: true });
  try {
    return { trials: r.trials(), refusals: r.refusals(), counts: r.counts() };
  } finally {
    r.close();
  }
}

test('a worker killed with SIGKILL mid-trial: its trial finishes on the other worker, exactly one result recorded', { timeout: 240_000 }, async () => {
  // One seed of the uniform reference rides along: the queue and its workers carry it like any trial (it runs first).
  const run = search('kill-worker', 4, ['--reference-seeds', '1']);
  const a = startWorker(redis.url);
  const b = startWorker(redis.url);
  try {
    const victim = await waitFor(() => store(run.out).trials.find((t) => t.state === 'running' && t.worker?.includes(`/${a.child.pid}/`)), 120_000);
    a.child.kill('SIGKILL');
    const st = cli(['status', run.out, '--queue', redis.url]);
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /^queue redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: \d+ waiting, \d+ active, \d+ completed, \d+ failed$/m);
    assert.doesNotMatch(st.stdout, /test-secret/);
    const { code } = await exited(run.child);
    assert.equal(code, 0, run.stderr());
    const s = store(run.out);
    assert.equal(s.counts.complete, 5, run.stderr());
    assert.deepEqual(s.trials.filter((x) => x.role === 'reference').map((x) => [x.index, x.state]), [[4, 'complete']]);
    const t = s.trials.find((x) => x.index === victim.index)!;
    assert.equal(t.state, 'complete');
    assert.match(t.worker!, new RegExp(`/${b.child.pid}/`), 'the other worker finished it');
    assert.deepEqual(s.refusals.filter((r) => r.what === 'result'), [], 'no second result for any trial');
    assert.ok(s.trials.every((x) => x.valError !== null));
  } finally {
    await Promise.all([stopProcess(a.child), stopProcess(b.child), stopProcess(run.child)]);
  }
});

test('Redis wiped (FLUSHALL) and then restarted mid-campaign: the campaign completes from its store, every trial once', { timeout: 240_000 }, async () => {
  const run = search('flush', 6);
  const w = startWorker(redis.url, ['--workers', '2']);
  try {
    await waitFor(() => store(run.out).counts.complete >= 1, 120_000);
    const c = redis.client();
    await c.flushall();
    c.disconnect();
    await waitFor(() => store(run.out).counts.complete >= 3, 120_000);
    const atRestart = store(run.out).counts.complete;
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.launch({ persist: true });
    const { code } = await exited(run.child);
    assert.equal(code, 0, run.stderr());
    const s = store(run.out);
    assert.equal(s.counts.complete, 6, run.stderr());
    assert.equal(s.counts.total, 6);
    assert.match(run.stderr(), /gone from Redis \(restart or flush\); enqueued again/, 'the flush hit jobs in flight');
    assert.ok(atRestart < 6, 'Redis restarted while trials were left');
    assert.ok(s.trials.every((t) => t.attempts === 1), 'no attempt was lost to the flush or the restart');
    // Every trial has exactly one stored result; any repeated training was refused, never written twice.
    assert.ok(s.trials.every((t) => t.state === 'complete' && t.curves.length === 2));
  } finally {
    await Promise.all([stopProcess(w.child), stopProcess(run.child)]);
  }
});

test('the coordinator killed with SIGKILL and resumed: nothing lost, nothing duplicated', { timeout: 240_000 }, async () => {
  const run = search('kill-coordinator', 5);
  const w = startWorker(redis.url, ['--workers', '2']);
  try {
    await waitFor(() => {
      const s = store(run.out);
      return s.counts.complete >= 1 && s.counts.running >= 1;
    }, 120_000);
    run.child.kill('SIGKILL');
    await exited(run.child);
    const before = store(run.out);
    const r = cliProcess(['resume', run.out, '--queue', redis.url]);
    let stderr = '';
    r.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const { code } = await exited(r);
    assert.equal(code, 0, stderr);
    const s = store(run.out);
    assert.equal(s.counts.complete, 5, stderr);
    for (const t of before.trials.filter((x) => x.state === 'complete')) {
      assert.equal(s.trials[t.index].finishedAt, t.finishedAt, `completed trial ${t.index} was not retrained`);
    }
    // Trials running at the kill were adopted under their attempt, not started again.
    assert.ok(s.trials.every((t) => t.attempts === 1), JSON.stringify(s.trials.map((t) => t.attempts)));
  } finally {
    await Promise.all([stopProcess(w.child), stopProcess(run.child)]);
  }
});

test('a malformed or foreign job payload fails that job with a clear error, and nothing else', { timeout: 240_000 }, async () => {
  // BullMQ leaves a connection it was given open on close; it is ended here so the test process can exit.
  const connection = redis.client();
  const queue = new Queue('trials', { connection, prefix: 'prunespace' });
  await queue.add('trial', { hello: 'world' }, { jobId: 'foreign-1' });
  await queue.add('trial', { v: 1, campaign: 'zzz' }, { jobId: 'foreign-2' });
  const run = search('foreign', 2, [], 64, 1);
  const w = startWorker(redis.url);
  try {
    const { code } = await exited(run.child);
    assert.equal(code, 0, run.stderr());
    assert.equal(store(run.out).counts.complete, 2);
    for (const id of ['foreign-1', 'foreign-2']) {
      const job = await queue.getJob(id);
      assert.equal(await job!.getState(), 'failed');
      assert.match(job!.failedReason, /^not a prunespace trial job \(\w+/);
    }
    assert.match(w.stderr(), /job foreign-1: not a prunespace trial job/);
  } finally {
    await queue.close();
    connection.disconnect();
    await Promise.all([stopProcess(w.child), stopProcess(run.child)]);
  }
});

test('a wrong password, an unreachable Redis or an open Redis off loopback: one line, exit 2, nothing written', { timeout: 300_000 }, async () => {
  const root = tempDir('bad-queue');
  const space = writeTinySpace(root);
  const cases: Array<[string, RegExp]> = [
    [`redis://:wrong@127.0.0.1:${redis.port}`, /refused the credentials/],
    [`redis://:x@127.0.0.1:1`, /cannot reach Redis/],
    ['redis://10.1.2.3:6379', /without a password to a host off loopback is refused/],
    ['http://127.0.0.1:6379', /scheme must be redis/],
  ];
  for (const [url, why] of cases) {
    const out = join(root, 'run');
    const r = cli(['search', space, '--out', out, '--samples', '2', ...tinyFlags(), '--queue', url]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, why);
    assert.doesNotMatch(r.stderr, /wrong/, 'the password is never printed');
    assert.equal(existsSync(out), false, 'nothing written');
    const w = cli(['worker', '--queue', url]);
    assert.equal(w.status, 2, w.stderr);
    assert.match(w.stderr, why);
  }
  assert.deepEqual(readdirSync(root), ['tiny.json']);
});

test('a worker checks the queued campaigns before taking work: a dataset it cannot read is one line, exit 2', { timeout: 60_000 }, async () => {
  const c = redis.client();
  const entry = { id: 'abcdefabcdef', name: 'needs-fmnist', dataset: 'fashion-mnist', backend: 'wasm', updatedAt: new Date().toISOString() };
  await c.hset('prunespace:campaigns', entry.id, JSON.stringify(entry));
  try {
    const w = cli(['worker', '--queue', redis.url, '--data-dir', join(tempDir('no-data'), 'missing'), '--wait-for-campaign', '0']);
    assert.equal(w.status, 2, w.stderr);
    assert.equal(w.stderr.trim().split('\n').length, 1, w.stderr);
    assert.match(w.stderr, /campaign needs-fmnist needs dataset fashion-mnist, which this host cannot read .*pass --data-dir/);
  } finally {
    await c.hdel('prunespace:campaigns', entry.id);
    c.disconnect();
  }
});
