/** The store contract: legal transitions only, attempt tokens, leases, rungs, and migration of older stores. */
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
  assert.deepEqual(reader.counts(), { waiting: 2, running: 0, complete: 1, failed: 0, pruned: 0, paused: 0, total: 3 });
  reader.close();
  const store = openCampaign(dir);
  assert.deepEqual(store.trials().map((t) => t.state), ['waiting', 'waiting', 'complete']);
  assert.equal(store.finish(store.start(0, lease), ok, 'w'), true);
  store.close();
  const again = new Database(storePath(dir), { readonly: true });
  assert.equal(again.pragma('user_version', { simple: true }), 4);
  again.close();
});

test('a version-3 store (roles, no rungs) opens: read as rung 0 with one rung result, migrated with reference seed indices', () => {
  const dir = newStore('migrate-v3', 4);
  const db = new Database(storePath(dir));
  db.exec(`CREATE TABLE t3 AS SELECT idx, round, widths, seed, flops, params, activations, state, attempts, val_error, test_error, train_loss,
    curves, wall_seconds, images_per_second, backend, worker, error, started_at, finished_at, token, lease_until, heartbeat_at, role FROM trials;
    DROP TABLE trials; ALTER TABLE t3 RENAME TO trials;
    UPDATE trials SET role = 'reference' WHERE idx >= 2;
    UPDATE trials SET state = 'complete', val_error = 0.3, test_error = 0.35, train_loss = 0.9, curves = '[{"epoch":1},{"epoch":2}]' WHERE idx = 1;`);
  db.pragma('user_version = 3');
  db.close();
  const reader = openCampaign(dir, { readonly: true });
  const old = reader.trials();
  assert.deepEqual(old.map((t) => t.rung), [0, 0, 0, 0]);
  assert.deepEqual(old[1].rungResults, [{ rung: 0, epochs: 2, valError: 0.3, testError: 0.35, trainLoss: 0.9, images: 0 }]);
  assert.deepEqual(old[0].rungResults, []);
  reader.close();
  const store = openCampaign(dir);
  const trials = store.trials();
  assert.deepEqual(trials.map((t) => t.role), ['sample', 'sample', 'reference', 'reference']);
  assert.deepEqual(trials.map((t) => t.seedIndex), [undefined, undefined, 0, 1]);
  assert.equal(trials[1].curves.length, 2);
  assert.equal(trials[1].rungResults.length, 1);
  // The migrated table takes the new states and roles.
  assert.equal(store.finish(store.start(0, lease), { ...ok, images: 64, epochs: 0.5 }, 'w', { paused: true }), true);
  assert.equal(store.trials()[0].state, 'paused');
  store.addTrials(0, [{ index: 4, widths: [1], seed: 9, complexity: { flops: 1, params: 1, activations: 1 }, role: 'finalist', finalistOf: 1, seedIndex: 0, rung: 2 }]);
  const finalist = store.trials()[4];
  assert.deepEqual([finalist.role, finalist.finalistOf, finalist.seedIndex, finalist.rung], ['finalist', 1, 0, 2]);
  store.close();
});

test('rungs: a finished rung pauses with its result; promotion continues it in the next rung, pruning ends it', () => {
  const store = openCampaign(newStore('rungs', 2));
  const curve = { epoch: 1, trainLoss: 1, trainError: 0.5, valLoss: 1, valError: 0.4, lr: 0.1, seconds: 1 };
  for (const i of [0, 1]) assert.equal(store.finish(store.start(i, lease), { ...ok, valError: [0.4, 0.3][i], images: 32, epochs: 1, curves: [curve] }, 'w', { paused: true }), true);
  assert.deepEqual(store.counts().paused, 2);
  assert.deepEqual(store.runnable(2), [], 'a paused trial does not run until promoted');
  assert.throws(() => store.start(0, lease), IllegalTransition);
  assert.equal(store.promote(1), true);
  assert.equal(store.prune(0), true);
  assert.equal(store.promote(0), false, 'pruned is final');
  const [pruned, promoted] = store.trials();
  assert.deepEqual([pruned.state, pruned.rung], ['pruned', 0]);
  assert.deepEqual([promoted.state, promoted.rung], ['waiting', 1]);
  // A failed attempt of rung 1 keeps rung 0's result and curves; the retry's success appends rung 1.
  assert.equal(store.finish(store.start(1, lease), { status: 'failed', error: 'nan', curves: [curve], wallSeconds: 1, backend: 'wasm' }, 'w'), true);
  assert.equal(store.trials()[1].rungResults.length, 1);
  assert.equal(store.trials()[1].curves.length, 2, "rung 0's curve and the failed attempt's");
  assert.equal(store.finish(store.start(1, lease), { ...ok, valError: 0.1, images: 64, epochs: 3, curves: [{ ...curve, epoch: 2 }, { ...curve, epoch: 3 }] }, 'w'), true);
  const done = store.trials()[1];
  assert.equal(done.state, 'complete');
  assert.deepEqual(done.rungResults.map((r) => [r.rung, r.valError, r.images, r.epochs]), [[0, 0.3, 32, 1], [1, 0.1, 64, 3]]);
  assert.deepEqual(done.curves.map((c) => c.epoch), [1, 2, 3]);
  store.close();
});
