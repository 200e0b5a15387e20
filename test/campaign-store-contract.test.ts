/** The store contract: legal transitions only, attempt tokens, leases, and migration of version-1 stores. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCampaignStore, IllegalTransition, openCampaign, storePath } from '../src/campaign/store.js';
import type { CampaignConfig, RoundRecord } from '../src/campaign/types.js';
import { tempDir, tinySettings, TINY_SPACE } from './campaign-helpers.js';

function newStore(label: string, n = 3) {
  const dir = join(tempDir(label), 'run');
  mkdirSync(dir);
  const config = {
    name: 'run', space: TINY_SPACE, spacePath: 'tiny.json', net: { family: 'resnet20', input: [8, 8, 1], classes: 3 }, settings: tinySettings(),
    samples: n, seed: 1, createdAt: new Date().toISOString(), versions: {}, backend: 'wasm', groups: [], maxAttempts: 2,
  } as unknown as CampaignConfig;
  const round: RoundRecord = { round: 0, spaceFile: 'space-r0.json', space: TINY_SPACE, samples: n, sampleSeed: 1, sampleAttempts: n, acceptanceRate: 1, createdAt: config.createdAt };
  const trials = Array.from({ length: n }, (_, index) => ({ index, widths: [1], seed: index, complexity: { flops: 1, params: 1, activations: 1 } }));
  createCampaignStore(dir, config, round, trials).close();
  return dir;
}

const ok = { status: 'complete' as const, valError: 0.2, curves: [], wallSeconds: 1, backend: 'wasm' };
const lease = { leaseMs: 60_000, maxAttempts: 2 };

test('only legal transitions: a complete trial never runs again, waiting cannot finish', () => {
  const store = openCampaign(newStore('legal'));
  const a = store.start(0, lease);
  assert.equal(a.attempt, 1);
  assert.equal(store.finish(a, ok, 'w'), true);
  assert.throws(() => store.start(0, lease), IllegalTransition);
  assert.equal(store.trials()[0].state, 'complete');
  // A result for a trial that never started is refused, not written.
  assert.equal(store.finish({ index: 1, round: 0, attempt: 1, token: 'forged' }, ok, 'w'), false);
  assert.equal(store.trials()[1].state, 'waiting');
  store.close();
});

test('a late result from an abandoned attempt is refused and recorded; the current attempt wins', () => {
  const store = openCampaign(newStore('stale'));
  const seen: string[] = [];
  store.onRefused = (r) => seen.push(r.what);
  const first = store.start(0, lease);
  assert.equal(store.release(first), true);
  const second = store.start(0, lease);
  assert.notEqual(first.token, second.token);
  assert.equal(store.finish(first, { ...ok, valError: 0.9 }, 'old'), false);
  assert.equal(store.heartbeat(first, 1000), false);
  assert.equal(store.finish(second, ok, 'new'), true);
  // A duplicate delivery of the winning result changes nothing either.
  assert.equal(store.finish(second, { ...ok, valError: 0.5 }, 'dup'), false);
  const t = store.trials()[0];
  assert.equal(t.valError, 0.2);
  assert.equal(t.worker, 'new');
  assert.deepEqual(seen, ['result', 'heartbeat', 'result']);
  assert.equal(store.refusals().length, 3);
  store.close();
});

test('heartbeats renew a lease; a lapsed lease fails the attempt, which retries under a new token while attempts last', () => {
  const store = openCampaign(newStore('lease'));
  const a = store.start(0, { leaseMs: 1000, maxAttempts: 2 });
  const b = store.start(1, { leaseMs: 1000, maxAttempts: 2 });
  assert.equal(store.heartbeat(b, 10_000, 'host-b/thread-1'), true);
  const expired = store.expireLeases(Date.now() + 5000);
  assert.deepEqual(expired.map((x) => x.index), [0]);
  const [t0, t1] = store.trials();
  assert.equal(t0.state, 'failed');
  assert.match(t0.error!, /lease expired/);
  assert.equal(t1.state, 'running');
  assert.equal(t1.worker, 'host-b/thread-1');
  assert.deepEqual(store.runnable(2).map((t) => t.index), [0, 2]);
  const retry = store.start(0, { leaseMs: 1000, maxAttempts: 2 });
  assert.equal(retry.attempt, 2);
  assert.equal(store.finish(a, ok, 'late'), false, 'the expired attempt cannot report any more');
  assert.equal(store.finish(retry, { status: 'failed', error: 'nan', curves: [], wallSeconds: 1, backend: 'wasm' }, 'w'), true);
  assert.throws(() => store.start(0, { leaseMs: 1000, maxAttempts: 2 }), /2 of 2 attempts/);
  store.close();
});

test('a version-1 store (state pending) is read as waiting and migrated when a coordinator opens it', () => {
  const dir = newStore('migrate');
  // Rebuild the version-1 layout: the old state check, no token or lease columns, user_version 1.
  const db = new Database(storePath(dir));
  db.exec(`CREATE TABLE t1 AS SELECT idx, round, widths, seed, flops, params, activations, 'pending' AS state, attempts, val_error, test_error,
    train_loss, curves, wall_seconds, images_per_second, backend, worker, error, started_at, finished_at FROM trials;
    DROP TABLE trials; DROP TABLE refused; ALTER TABLE t1 RENAME TO trials; UPDATE trials SET state = 'complete', val_error = 0.3 WHERE idx = 2;`);
  db.pragma('user_version = 1');
  db.close();
  const reader = openCampaign(dir, { readonly: true });
  assert.deepEqual(reader.counts(), { waiting: 2, running: 0, complete: 1, failed: 0, pruned: 0, total: 3 });
  reader.close();
  const store = openCampaign(dir);
  assert.deepEqual(store.trials().map((t) => t.state), ['waiting', 'waiting', 'complete']);
  assert.equal(store.finish(store.start(0, lease), ok, 'w'), true);
  store.close();
  const again = new Database(storePath(dir), { readonly: true });
  assert.equal(again.pragma('user_version', { simple: true }), 3);
  again.close();
});
