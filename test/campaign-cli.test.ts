/** Real campaign processes: killed with SIGKILL and SIGINT, resumed, inspected with status; bad input is one line. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCampaign, type StateCounts } from '../src/campaign/store.js';
import type { TrialRecord } from '../src/campaign/types.js';
import { cli, cliProcess, exited, tempDir, tinyFlags, waitFor, writeTinySpace } from './campaign-helpers.js';

function read(dir: string): { counts: StateCounts; trials: TrialRecord[] } {
  const reader = openCampaign(dir, { readonly: true });
  try {
    return { counts: reader.counts(), trials: reader.trials() };
  } finally {
    reader.close();
  }
}

/** A campaign of `samples` tiny trials on one worker, each long enough (a few hundred ms) to be caught mid-way. */
function startSearch(label: string, samples = 6, images = 192) {
  const dir = tempDir(label);
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const child = cliProcess(['search', space, '--samples', String(samples), '--workers', '1', '--out', out, '--no-reference', ...tinyFlags(images, 2)]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { dir, out, space, child, stderr: () => stderr };
}

test('kill -9 loses no completed trial; resume reruns the interrupted one and finishes the rest', async () => {
  const run = startSearch('kill9');
  await waitFor(() => read(run.out).counts.complete >= 2 && read(run.out).counts.running === 1);
  // status reads the store while the coordinator writes it.
  const live = cli(['status', run.out, '--json']);
  assert.equal(live.status, 0, live.stderr);
  assert.equal(JSON.parse(live.stdout).counts.total, 6);
  run.child.kill('SIGKILL');
  await exited(run.child);
  const before = read(run.out);
  const done = before.trials.filter((t) => t.state === 'complete');
  assert.ok(done.length >= 2);
  assert.ok(before.counts.running <= 1);

  const resumed = cli(['resume', run.out]);
  assert.equal(resumed.status, 0, resumed.stderr);
  const after = read(run.out);
  assert.equal(after.counts.complete, 6);
  for (const t of done) {
    const again = after.trials[t.index];
    assert.equal(again.finishedAt, t.finishedAt, `trial ${t.index} was retrained`);
    assert.equal(again.attempts, 1);
  }
  assert.ok(after.trials.every((t) => t.attempts === 1), 'the attempt cut by kill -9 does not count');
  assert.equal(readFileSync(join(run.out, 'trials.csv'), 'utf8').trim().split('\n').length, 7);
});

test('Ctrl-C lets the running trial finish, leaves the rest pending, and exits 130; resume completes it', async () => {
  const run = startSearch('sigint');
  await waitFor(() => read(run.out).counts.complete >= 1 && read(run.out).counts.running === 1);
  run.child.kill('SIGINT');
  const { code } = await exited(run.child);
  assert.equal(code, 130, run.stderr());
  assert.match(run.stderr(), /waiting for 1 running trial/);
  const stopped = read(run.out);
  assert.equal(stopped.counts.running, 0);
  assert.ok(stopped.counts.complete >= 2, 'the in-flight trial finished');
  assert.ok(stopped.counts.waiting > 0);
  assert.equal(cli(['resume', run.out]).status, 0);
  assert.equal(read(run.out).counts.complete, 6);
});

test('a second Ctrl-C exits at once and returns the running trial to pending', async () => {
  // Longer trials, so that the second Ctrl-C surely lands while one still runs.
  const run = startSearch('sigint2', 4, 1024);
  await waitFor(() => read(run.out).counts.complete >= 1 && read(run.out).counts.running === 1);
  run.child.kill('SIGINT');
  await waitFor(() => /waiting for/.test(run.stderr()), 10_000, 20);
  run.child.kill('SIGINT');
  const { code } = await exited(run.child);
  assert.equal(code, 130);
  assert.match(run.stderr(), /returned to waiting/);
  const stopped = read(run.out);
  assert.equal(stopped.counts.running, 0);
  assert.ok(stopped.trials.filter((t) => t.state === 'waiting').every((t) => t.attempts === 0));
});

test('bad input is one line with exit code 2, and an existing campaign is never overwritten', () => {
  const dir = tempDir('badinput');
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const flags = ['--samples', '2', '--workers', '1', ...tinyFlags(64, 1)];
  assert.equal(cli(['search', space, '--out', out, ...flags]).status, 0);
  const db = join(out, 'campaign.db');
  const digest = () => createHash('sha256').update(readFileSync(db)).digest('hex');
  const original = digest();

  const again = cli(['search', space, '--out', out, ...flags]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /already holds this campaign/);

  mkdirSync(join(dir, 'junk'));
  writeFileSync(join(dir, 'junk', 'notes.txt'), 'mine');
  writeFileSync(join(dir, 'broken.json'), '{ "name": ');
  const cases: Array<[string[], RegExp]> = [
    [['search', space, '--out', join(dir, 'junk'), ...flags], /exists and is not a campaign directory/],
    [['search', join(dir, 'missing.json'), '--out', join(dir, 'new'), ...flags], /missing.json does not exist/],
    [['search', join(dir, 'broken.json'), '--out', join(dir, 'new'), ...flags], /broken.json: not valid JSON/],
    [['search', space, '--out', join(dir, 'new'), ...flags, '--workers', '0'], /--workers expects an integer >= 1/],
    [['search', space, '--out', join(dir, 'new'), ...flags, '--gpus', '0,x'], /--gpus expects comma-separated GPU ids/],
    [['resume', join(dir, 'junk')], /is not a campaign directory/],
    [['status', join(dir, 'nowhere')], /is not a campaign directory/],
  ];
  for (const [args, message] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // A different request into the same directory: one line per difference (test/campaign-file.test.ts), then the way on.
  for (const args of [['search', space, '--out', out, ...flags, '--seed', '5'],
    ['search', writeTinySpace(tempDir('other'), { regime: { flops: { min: 0.01, max: 0.3 } } }), '--out', out, ...flags]]) {
    const r = cli(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.trim().split('\n').at(-1)!, /holds a different campaign .*prunespace resume/);
  }
  assert.equal(digest(), original);

  // Data that does not load fails the first trial: the search stops with the reason and keeps no campaign in the way.
  const noData = join(dir, 'nodata');
  const r = cli(['search', space, '--out', noData, '--samples', '2', '--workers', '1', '--epochs', '1', '--backend', 'wasm',
    '--data', 'fashion-mnist', '--data-dir', join(dir, 'nowhere')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^prunespace: .*nowhere.*\(nothing kept in /);
  assert.ok(!existsSync(noData));
  assert.equal(readFileSync(join(dir, 'junk', 'notes.txt'), 'utf8'), 'mine');
});
