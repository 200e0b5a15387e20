import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCampaign } from '../src/campaign/store.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { deriveSeed } from '../src/util/rng.js';
import { cli, tempDir, tinyFlags, writeTinySpace } from './campaign-helpers.js';

test('search --rounds trains a round, refines its space, samples the next round from the child and compares EDFs', () => {
  const dir = tempDir('rounds');
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const r = cli(['search', space, '--samples', '8', '--rounds', '2', '--round-samples', '4', '--seed', '3', '--workers', '2', '--reference-seeds', '1', '--out', out, ...tinyFlags()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /round 1 rule ratio: (applied|skipped)/);
  assert.match(r.stderr, /round 1 vs round 0: n 4 vs 8, .* KS distance \d\.\d{3}/);

  const reader = openCampaign(out, { readonly: true });
  const rounds = reader.rounds();
  const trials = reader.trials();
  reader.close();
  assert.deepEqual(rounds.map((x) => [x.round, x.samples, x.spaceFile]), [[0, 8, 'space-r0.json'], [1, 4, 'space-r1.json']]);
  assert.equal(trials.length, 13);
  assert.ok(trials.every((t) => t.state === 'complete'));
  // The uniform reference is one trial of round 0, after its candidates; the EDF comparison above counts candidates only.
  assert.deepEqual(trials.filter((t) => t.role === 'reference').map((t) => [t.index, t.round]), [[8, 0]]);

  // The child space is a real space file in the run directory, naming its parent and usable as search input.
  const childPath = join(out, 'space-r1.json');
  assert.ok(existsSync(childPath));
  const child = compileSpace(loadSpace(childPath));
  assert.equal(child.loaded.file.parent, 'space-r0.json');
  assert.ok(child.loaded.file.provenance);
  const round1 = trials.filter((t) => t.round === 1);
  for (const t of round1) assert.ok(child.contains(t.widths), `round 1 trial ${t.index} is outside its space`);
  // Indices continue across rounds, seeds derive from the index, and no subnetwork is trained twice.
  assert.deepEqual(round1.map((t) => t.index), [9, 10, 11, 12]);
  for (const t of trials) assert.equal(t.seed, deriveSeed(3, t.index));
  assert.equal(new Set(trials.map((t) => t.widths.join(','))).size, trials.length);

  // resume with the campaign's own rounds has nothing left; --rounds 3 adds one more refined round.
  const again = cli(['resume', out]);
  assert.equal(again.status, 0, again.stderr);
  const more = cli(['resume', out, '--rounds', '3']);
  assert.equal(more.status, 0, more.stderr);
  const after = openCampaign(out, { readonly: true });
  assert.deepEqual(after.rounds().map((x) => x.round), [0, 1, 2]);
  assert.equal(after.trials({ round: 2 }).length, 4);
  after.close();
  assert.equal(loadSpace(join(out, 'space-r2.json')).file.parent, 'space-r1.json');
});
