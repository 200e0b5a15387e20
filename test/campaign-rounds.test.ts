import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { wilsonInterval } from '../src/analysis/calibration.js';
import { compareRounds } from '../src/analysis/compare.js';
import { openCampaign } from '../src/campaign/store.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { deriveSeed, makeRng } from '../src/util/rng.js';
import { gaussian } from './analysis-fixtures.js';
import { cli, tempDir, tinyFlags, writeTinySpace } from './campaign-helpers.js';

test('search --rounds trains a round, refines its space, samples the next round from the child and compares EDFs', () => {
  const dir = tempDir('rounds');
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const r = cli(['search', space, '--samples', '8', '--rounds', '2', '--round-samples', '4', '--seed', '3', '--workers', '2', '--reference-seeds', '1', '--out', out, ...tinyFlags()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /round 1 rule ratio: (applied|skipped)/);
  assert.match(r.stderr, /round 1 vs round 0: n 4 vs 8, .* EDF gap D\+ \d\.\d{3} \(one-sided permutation p = \d\.\d{3}\), KS distance \d\.\d{3}/);
  assert.match(r.stderr, /^prunespace: round 1: (the child round is better than its parent|no evidence that the child round is better than its parent at 5%): its error EDF lies up to \d\.\d{3} above/m);

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

/** How often compareRounds calls a child better, over seeded simulated rounds (parent 48, child 24, unit normal errors). */
function betterRate(label: string, sims: number, shift: number): { p: number; lo: number; hi: number } {
  const rng = makeRng(4, `rounds/${label}`);
  let hits = 0;
  for (let i = 0; i < sims; i++) {
    const parent = Array.from({ length: 48 }, () => gaussian(rng));
    const child = Array.from({ length: 24 }, () => shift + gaussian(rng));
    if (compareRounds(parent, child, { permutations: 99, seed: i })!.better) hits++;
  }
  const [lo, hi] = wilsonInterval(hits, sims);
  return { p: hits / sims, lo, hi };
}

test('is the child better? The one-sided EDF gap holds its level on noise and finds a planted improvement', (t) => {
  const show = (x: { p: number; lo: number; hi: number }) => `${(100 * x.p).toFixed(1)}% (Wilson 95% ${(100 * x.lo).toFixed(1)}-${(100 * x.hi).toFixed(1)}%)`;
  const noise = betterRate('null', 2000, 0);
  t.diagnostic(`same distribution, 48 vs 24, 99 shuffles: called better in ${show(noise)}`);
  assert.ok(noise.lo <= 0.05 && noise.p >= 0.03, `near its 5% level, not far below: ${show(noise)}`);
  const half = betterRate('shift', 200, -0.5);
  t.diagnostic(`child 0.5 sd better: called better in ${show(half)}`);
  assert.ok(half.p >= 0.45, show(half));
  // One-sided: a worse child is not called better, though the two-sided KS would notice the difference.
  const worse = betterRate('worse', 200, 0.5);
  t.diagnostic(`child 0.5 sd worse: called better in ${show(worse)}`);
  assert.ok(worse.p <= 0.01, show(worse));
  const rng = makeRng(1, 'rounds/example');
  const parent = Array.from({ length: 48 }, () => gaussian(rng));
  const child = Array.from({ length: 24 }, () => 1 + gaussian(rng));
  const c = compareRounds(parent, child, { permutations: 199, seed: 1 })!;
  assert.ok(c.ks > 0.3 && c.pValue < 0.05 && !c.better && c.lead < 0.1, JSON.stringify(c));
  assert.match(c.text, /^no evidence that the child round is better than its parent at 5%/);
});
