/** serve without a browser: the watcher follows a real store read-only, the token rule, escaping, and bad input. */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCampaign } from '../src/campaign/store.js';
import { startServer } from '../src/serve/server.js';
import { RunWatcher } from '../src/serve/watch.js';
import { syntheticCampaign, writeSyntheticStore } from './analysis-fixtures.js';
import { cli, tempDir } from './campaign-helpers.js';

const EVIL = 'run-<img src=x onerror=alert(1)>';

test('the watcher follows trials as they start and finish, rereading only changed ones, and never writes the store', async () => {
  const dir = join(tempDir('serve-watch'), 'run');
  await writeSyntheticStore(dir, syntheticCampaign({ n: 30 }), 20);
  const db = join(dir, 'campaign.db');
  const w = new RunWatcher(dir);
  assert.equal(w.counts().waiting, 10);
  assert.equal(w.poll(), false, 'nothing changed');
  const store = openCampaign(dir);
  const before = readFileSync(db);
  try {
    const a = store.start(20, { worker: 'w1', leaseMs: 60_000, maxAttempts: 2 });
    assert.equal(w.poll(), true);
    assert.equal(w.counts().running, 1);
    assert.equal(w.fullReads, 1, 'a start is read incrementally');
    store.finish(a, { status: 'failed', error: 'CUDA <out> of memory', curves: [], wallSeconds: 1, backend: 'synthetic' }, 'w1');
    w.poll();
    assert.equal(w.counts().running, 0);
    assert.equal(w.trials()[20].error, 'CUDA <out> of memory');
    assert.equal(w.lastReread, 1, 'only the trial that was running is reread');
    assert.equal(w.fullReads, 1);
    // Started and finished between two polls: the counts disagree, and everything is reread once.
    const b = store.start(21, { worker: 'w1', leaseMs: 60_000, maxAttempts: 2 });
    store.finish(b, { status: 'complete', valError: 0.2, testError: 0.2, trainLoss: 0.1, curves: [], wallSeconds: 1, backend: 'synthetic' }, 'w1');
    w.poll();
    assert.equal(w.fullReads, 2);
    assert.equal(w.trials()[21].state, 'complete');
    assert.equal(w.counts().complete, openCampaign(dir, { readonly: true }).counts().complete);
  } finally {
    store.close();
    w.close();
  }
  // The watcher's connection is read-only: only the coordinator's writes changed the file.
  const mtime = statSync(db).mtimeMs;
  const w2 = new RunWatcher(dir);
  w2.poll();
  w2.close();
  assert.equal(statSync(db).mtimeMs, mtime);
  assert.ok(before.length > 0);
});

test('a run directory name with markup is escaped in the page, the live JSON fragments and the analysis', async () => {
  const dir = join(tempDir('serve-escape'), EVIL);
  await writeSyntheticStore(dir, syntheticCampaign({ n: 40 }));
  const other = join(tempDir('serve-other'), 'last-week');
  await writeSyntheticStore(other, syntheticCampaign({ n: 30, seed: 5 }));
  const server = await startServer({ dirs: [dir, other], host: '127.0.0.1', port: 0, pollMs: 100, analysisGapMs: 0 });
  try {
    const page = await (await fetch(`${server.url}run/0/`)).text();
    assert.match(page, /prunespace serve: run-&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.ok(!page.includes('<img'), 'no raw markup from the name');
    const live = (await (await fetch(`${server.url}run/0/live.json`)).json()) as { main: { edf: string }; runs: { name: string }[] };
    assert.equal(live.runs[0].name, EVIL, 'names travel as JSON strings (the page sets them as text)');
    assert.match(live.main.edf, /run-&lt;img/);
    // Several runs: every run's status, and the EDF table compares the others with the main one.
    assert.deepEqual(live.runs.map((r) => r.name), [EVIL, 'last-week']);
    assert.match(live.main.edf, /<td>last-week<\/td><td>30<\/td>|<td>last-week<\/td><td>2\d<\/td>/);
    const swapped = (await (await fetch(`${server.url}run/1/live.json`)).json()) as { main: { name: string } };
    assert.equal(swapped.main.name, 'last-week');
    assert.ok(!live.main.edf.includes('<img'));
    let analysis: { meta?: string; sections?: { html: string }[] } = {};
    for (let i = 0; i < 200 && !analysis.meta; i++) {
      const r = await fetch(`${server.url}run/0/analysis.json`);
      if (r.status === 200) analysis = (await r.json()) as typeof analysis;
      else await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(analysis.meta, 'the analysis arrives');
    assert.ok(!JSON.stringify(analysis.sections).includes('<img'));
    const csv = await (await fetch(`${server.url}run/0/best.csv`)).text();
    assert.match(csv.split('\n')[0], /^rank,index,round,val_error/);
  } finally {
    await server.close();
  }
});

test('a token is required off loopback (generated) and wherever one is given; requests without it get 401', async () => {
  const dir = join(tempDir('serve-token'), 'run');
  await writeSyntheticStore(dir, syntheticCampaign({ n: 10 }));
  const open = await startServer({ dirs: [dir], host: '0.0.0.0', port: 0 });
  try {
    assert.ok(open.token && open.token.length >= 20, 'a token is generated off loopback');
    const url = `http://127.0.0.1:${open.port}/run/0/`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(`${url}live.json`)).status, 401);
    assert.equal((await fetch(`${url}?token=wrong`)).status, 401);
    assert.equal((await fetch('http://127.0.0.1:' + open.port + '/assets/vega.js')).status, 401);
    const ok = await fetch(`${url}?token=${open.token}`);
    assert.equal(ok.status, 200);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0];
    assert.equal((await fetch(`${url}live.json`, { headers: { cookie } })).status, 200, 'the page\'s own requests carry it as a cookie');
    assert.equal((await fetch(`${url}live.json`, { headers: { authorization: `Bearer ${open.token}` } })).status, 200);
  } finally {
    await open.close();
  }
  const given = await startServer({ dirs: [dir], host: '127.0.0.1', port: 0, token: 'sekret-token' });
  try {
    assert.equal((await fetch(given.url)).status, 401);
    assert.equal((await fetch(`${given.url}run/0/?token=sekret-token`)).status, 200);
  } finally {
    await given.close();
  }
  const plain = await startServer({ dirs: [dir], host: '127.0.0.1', port: 0 });
  try {
    assert.equal(plain.token, null);
    assert.equal((await fetch(`${plain.url}run/0/`)).status, 200);
    assert.equal((await fetch(`${plain.url}run/0/`, { method: 'POST' })).status, 405);
  } finally {
    await plain.close();
  }
});

test('bad input: a directory that is not a run, a port in use, a bad host: one line, exit 2', async () => {
  const dir = tempDir('serve-bad');
  const run = join(dir, 'run');
  await writeSyntheticStore(run, syntheticCampaign({ n: 5 }));
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as { port: number }).port;
  try {
    for (const [args, pattern] of [
      [['serve', dir], /is not a campaign directory/],
      [['serve', join(dir, 'missing')], /missing does not exist/],
      [['serve', run, '--port', String(port)], new RegExp(`--port ${port}: already in use`)],
      [['serve', run, '--host', 'bad host!'], /--host expects a host name or IP address/],
      [['serve', run, '--host', '10.255.255.1', '--port', '0'], /--host 10.255.255.1: no such local address/],
      [['serve', run, '--port', 'x'], /--port expects an integer/],
    ] as [string[], RegExp][]) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  } finally {
    busy.close();
  }
});
