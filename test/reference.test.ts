/** The uniform reference: its trials, its store role, its absence from the population statistics, and the calibrated verdict. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyseCampaign } from '../src/analysis/analyse.js';
import { wilsonInterval } from '../src/analysis/calibration.js';
import { compareWithReference, criticalValue, nullTail, referenceDecision } from '../src/analysis/reference.js';
import { refineSpace } from '../src/analysis/refine.js';
import { writeReport } from '../src/analysis/report/write.js';
import { prepareCampaign } from '../src/campaign/create.js';
import { makeJob, parseJob } from '../src/campaign/job.js';
import { createCampaignStore, openCampaign, storePath } from '../src/campaign/store.js';
import type { CampaignConfig, TrialRecord } from '../src/campaign/types.js';
import { widestUniform } from '../src/complexity/uniform.js';
import { uniformWidths } from '../src/nets/resolve.js';
import { baseWidths } from '../src/nets/resolve.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace, parseSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { spaceQuanta } from '../src/space/uniform.js';
import { makeRng } from '../src/util/rng.js';
import { gaussian, r20Space, syntheticCampaign, writeSyntheticStore } from './analysis-fixtures.js';
import { cli, tempDir, tinyFlags, tinySettings, writeTinySpace } from './campaign-helpers.js';

function prepare(label: string, space: Record<string, unknown>, referenceSeeds: number, samples = 5) {
  const dir = tempDir(label);
  const spacePath = join(dir, 'space.json');
  writeFileSync(spacePath, JSON.stringify(space));
  const prepared = prepareCampaign({ spacePath, outDir: join(dir, 'run'), samples, seed: 4, settings: tinySettings(), maxAttempts: 2, referenceSeeds });
  const reader = openCampaign(prepared.dir, { readonly: true });
  const trials = reader.trials();
  reader.close();
  return { prepared, trials, compiled: compileSpace(loadSpace(spacePath)) };
}

for (const [label, space] of [
  ['quantum 1', { name: 'r20', network: { family: 'resnet20', input: '8x8x1', classes: 3 }, samplers: [{ select: {}, keep: { min: 0.1, max: 1 } }], regime: { flops: { min: 0.3, max: 0.4 } } }],
  ['quantum 4', { ...r20Space, samplers: [{ select: { kinds: ['stage'] }, keep: { min: 0.25, max: 1 }, quantum: 4 }, { select: { kinds: ['inner'] }, keep: { min: 0.1, max: 1 }, quantum: 2 }] }],
] as const) {
  test(`reference trials (${label}): K seeds of the widest uniform widths inside the regime, after the candidates, in round 0`, () => {
    const { prepared, trials, compiled } = prepare('ref-widths', space as Record<string, unknown>, 3);
    const refs = trials.filter((t) => t.role === 'reference');
    const samples = trials.filter((t) => t.role === 'sample');
    assert.equal(refs.length, 3);
    assert.equal(new Set(refs.map((t) => t.seed)).size, 3, 'different seeds');
    assert.ok(refs.every((t) => t.round === 0 && t.state === 'waiting'));
    // The candidates are exactly `prunespace sample SPACE -n 5 --seed 4`, indices 0..4; the reference comes after them.
    assert.deepEqual(samples.map((t) => t.widths), sampleSpace(compiled, 5, 4).configs.map((c) => c.widths));
    assert.deepEqual(refs.map((t) => t.index), [5, 6, 7]);
    const plan = prepared.config.reference!;
    assert.equal(plan.seeds, 3);
    const bases = baseWidths(compiled.net);
    const quanta = spaceQuanta(compiled);
    for (const t of refs) {
      assert.deepEqual(t.widths, plan.widths);
      // One keep ratio for every group, rounded as the space rounds widths.
      assert.deepEqual(t.widths, uniformWidths(bases, plan.keep!, quanta));
      t.widths.forEach((w, g) => assert.ok(w === bases[g] || w % quanta[g] === 0, `group ${g}: ${w} not a multiple of ${quanta[g]}`));
      assert.ok(t.complexity.flops >= compiled.flops.min && t.complexity.flops <= compiled.flops.max, `${t.complexity.flops} outside the regime`);
    }
    // The next wider uniform configuration leaves the regime, and so does any ratio that changes the widths.
    let wider = plan.keep!;
    let widths = plan.widths!;
    while (widths.every((w, g) => w === plan.widths![g])) widths = uniformWidths(bases, (wider += 1e-4), quanta);
    assert.ok(compiled.complexity(widths).flops > compiled.flops.max, `keep ${wider} gives ${compiled.complexity(widths).flops}, inside the regime`);
    // Scheduled first: a campaign stopped early still has its reference.
    const store = openCampaign(prepared.dir);
    assert.deepEqual(store.runnable(2).slice(0, 3).map((t) => t.index), [5, 6, 7]);
    store.close();
  });
}

test('widestUniform: exact over the rounding points, full widths when the limit allows, null below the narrowest', () => {
  const bases = [16, 32, 64];
  const flopsOf = (w: number[]) => w[0] * w[1] + w[1] * w[2];
  const full = widestUniform(bases, flopsOf, Infinity)!;
  assert.deepEqual([full.ratio, full.widths, full.wider], [1, bases, undefined]);
  assert.equal(widestUniform(bases, flopsOf, 1), null);
  const limit = 0.5 * flopsOf(bases);
  const r = widestUniform(bases, flopsOf, limit, [1, 4, 8])!;
  assert.ok(r.flops <= limit && r.wider!.flops > limit);
  // Brute force over a fine grid of ratios finds nothing wider that fits.
  for (let x = 0; x <= 1; x += 1e-4) {
    const w = uniformWidths(bases, x, [1, 4, 8]);
    if (flopsOf(w) <= limit) assert.ok(w.every((v, g) => v <= r.widths[g]), `ratio ${x}: ${w}`);
  }
});

test('no reference when asked for none, and a reason when no uniform configuration fits the regime', () => {
  const none = prepare('ref-none', r20Space as Record<string, unknown>, 0);
  assert.equal(none.trials.filter((t) => t.role === 'reference').length, 0);
  assert.deepEqual(none.prepared.config.reference, { seeds: 0 });
  // A FLOPs window so narrow that it falls between two neighbouring uniform configurations.
  const narrow = { ...r20Space, regime: { flops: { min: 0.5, max: 0.5001 } } };
  const skipped = prepare('ref-skip', narrow as Record<string, unknown>, 3, 1);
  assert.equal(skipped.trials.filter((t) => t.role === 'reference').length, 0);
  assert.match(skipped.prepared.config.reference!.skipped!, /no uniform keep ratio lands inside the regime/);
  assert.ok(skipped.prepared.notes.some((n) => /no uniform reference trial/.test(n)));
});

test('a version-2 store (no role column) reads as all samples and migrates to the current version', () => {
  const dir = join(tempDir('ref-v2'), 'run');
  mkdirSync(dir);
  const c = syntheticCampaign({ n: 4 });
  const config = { ...c.config, groups: [], maxAttempts: 2 } as CampaignConfig;
  const round = { round: 0, spaceFile: 'space-r0.json', space: c.config.space, samples: 4, sampleSeed: 1, sampleAttempts: 4, acceptanceRate: 1, createdAt: config.createdAt };
  createCampaignStore(dir, config, round, c.trials.map((t) => ({ index: t.index, widths: t.widths, seed: t.seed, complexity: t.complexity }))).close();
  const db = new Database(storePath(dir));
  db.exec('ALTER TABLE trials DROP COLUMN role');
  db.pragma('user_version = 2');
  db.close();
  const reader = openCampaign(dir, { readonly: true });
  assert.deepEqual(reader.trials().map((t) => t.role), ['sample', 'sample', 'sample', 'sample']);
  assert.equal(reader.trials({ role: 'reference' }).length, 0);
  reader.close();
  const store = openCampaign(dir);
  assert.deepEqual(store.trials().map((t) => t.role), ['sample', 'sample', 'sample', 'sample']);
  store.addRound({ ...round, round: 1 }, [{ index: 4, widths: c.trials[0].widths, seed: 9, complexity: c.trials[0].complexity, role: 'reference' }]);
  assert.deepEqual(store.trials().map((t) => t.role), ['sample', 'sample', 'sample', 'sample', 'reference']);
  store.close();
  const again = new Database(storePath(dir), { readonly: true });
  assert.equal(again.pragma('user_version', { simple: true }), 4);
  again.close();
});

test('trial jobs carry the reference role through the queue payload; candidates carry none', () => {
  const config = { name: 'run', createdAt: '2026-01-01T00:00:00Z', seed: 1, net: { family: 'resnet20', input: [8, 8, 1], classes: 3 }, settings: tinySettings(), backend: 'wasm' } as unknown as CampaignConfig;
  const attempt = { index: 3, round: 0, attempt: 1, token: '1.abc' };
  const ref = parseJob(JSON.parse(JSON.stringify(makeJob(config, { index: 3, widths: [1, 2], seed: 5, role: 'reference' }, attempt))));
  assert.equal(ref.role, 'reference');
  const sample = parseJob(JSON.parse(JSON.stringify(makeJob(config, { index: 3, widths: [1, 2], seed: 5, role: 'sample' }, attempt))));
  assert.equal(sample.role, undefined);
  assert.throws(() => parseJob({ ...ref, role: 'other' }), /not a prunespace trial job \(role/);
});

/** Reference trials appended to a synthetic campaign: errors far below and above the candidates', so they would show. */
function withReference(trials: TrialRecord[], errors: number[]): TrialRecord[] {
  const first = trials.length;
  return [
    ...trials,
    ...errors.map((e, k) => ({ ...trials[0], index: first + k, seed: 77 + k, role: 'reference' as const, state: 'complete' as const, valError: e, testError: e, curves: trials[0].curves })),
    { ...trials[0], index: first + errors.length, seed: 99, role: 'reference' as const, state: 'failed' as const, valError: null, testError: null, curves: [] },
  ];
}

test('reference trials leave the analysis, the refinement and the report data unchanged', async () => {
  const c = syntheticCampaign({ n: 96 });
  const plain = c.trials.map((t) => ({ ...t, role: 'sample' as const }));
  const mixed = withReference(plain, [0.001, 0.9, 0.05]);
  const input = (trials: TrialRecord[]) => ({ name: 'syn', net: c.config.net, trials, seed: 3 });
  const a = analyseCampaign(input(plain));
  const b = analyseCampaign(input(mixed));
  assert.deepEqual(b, a);
  const parent = parseSpace(r20Space, 'r20.json');
  const refine = (x: typeof a) => refineSpace(parent, x, { name: 'r20.r1', parentRef: 'r20.json', campaign: {}, seed: 1, date: '2026-01-01' });
  assert.deepEqual(refine(b), refine(a));
  const dirA = mkdtempSync(join(tmpdir(), 'ref-report-a-'));
  const dirB = mkdtempSync(join(tmpdir(), 'ref-report-b-'));
  await writeReport({ name: 'syn', net: c.config.net, seed: 3, trials: plain }, dirA);
  const wb = await writeReport({ name: 'syn', net: c.config.net, seed: 3, trials: mixed, referenceSeeds: 4 }, dirB);
  const csvs = readdirSync(dirA).filter((f) => f.endsWith('.csv'));
  assert.ok(csvs.length >= 8);
  for (const f of csvs) assert.equal(readFileSync(join(dirB, f), 'utf8'), readFileSync(join(dirA, f), 'utf8'), f);
  const summary = (d: string) => {
    // The reference's seeds are the campaign's seed noise, so the fidelity section reads them by design; its population side must not change.
    const { reference: _r, fidelity, ...rest } = JSON.parse(readFileSync(join(d, 'summary.json'), 'utf8'));
    return { ...rest, population: [fidelity.structure.populationSd, fidelity.structure.populationN, fidelity.ranking] };
  };
  assert.deepEqual(summary(dirB), summary(dirA));
  // The report shows the comparison near the top and marks the reference's seeds by role.
  const html = readFileSync(wb.html, 'utf8');
  assert.ok(html.indexOf('Best against the uniform reference') < html.indexOf('Error distributions'));
  assert.match(html, /<td>reference<\/td><td>96<\/td>/);
  assert.match(readFileSync(join(dirB, 'reference.csv'), 'utf8'), /^role,trial,seed,val_error/);
  assert.equal(wb.reference?.seeds.length, 3);
  assert.match(readFileSync(join(dirA, 'report.html'), 'utf8'), /has no uniform reference trial/);
});

/** Standard normal draws from a seeded stream. */
function normals(rng: () => number, n: number, shift = 0): number[] {
  return Array.from({ length: n }, () => shift + gaussian(rng));
}

test('the verdict fires on noise at most 5% of the time, and fires on a clear effect', (t) => {
  const sims = 4000;
  const rng = makeRng(11, 'reference-calibration');
  for (const [n, k] of [[28, 3], [10, 2], [100, 5], [48, 10]] as const) {
    // The null: every candidate drawn from the reference's own seed distribution (the best is still the minimum of N).
    let hits = 0;
    for (let i = 0; i < sims; i++) if (referenceDecision(normals(rng, n), normals(rng, k)).verdict === 'better') hits++;
    const [lo, hi] = wilsonInterval(hits, sims);
    t.diagnostic(`null N=${n} K=${k}: fired ${(100 * hits / sims).toFixed(2)}% (Wilson 95% ${(100 * lo).toFixed(1)}-${(100 * hi).toFixed(1)}%), critical ${criticalValue(n, k).toFixed(2)} sd`);
    assert.ok(lo <= 0.05 && hits / sims <= 0.06, `N=${n} K=${k}: ${hits} of ${sims}`);
    assert.ok(hits / sims >= 0.03, 'calibrated, not merely conservative');
  }
  // A composite null: candidates with architecture effects, none better than uniform in expectation.
  let composite = 0;
  for (let i = 0; i < sims; i++) {
    const c = normals(rng, 28).map((x) => x + 2 * rng());
    if (referenceDecision(c, normals(rng, 3)).verdict === 'better') composite++;
  }
  t.diagnostic(`composite null N=28 K=3: fired ${(100 * composite / sims).toFixed(2)}%`);
  assert.ok(composite / sims <= 0.05);
  // A clear effect: one candidate truly 20 seed sds better than uniform (K = 3), or 10 (K = 5).
  for (const [k, effect] of [[3, 20], [5, 10]] as const) {
    let fired = 0;
    for (let i = 0; i < 1000; i++) {
      const c = normals(rng, 28);
      c[0] -= effect;
      if (referenceDecision(c, normals(rng, k)).verdict === 'better') fired++;
    }
    t.diagnostic(`effect ${effect} sd, N=28 K=${k}: fired ${(fired / 10).toFixed(1)}%`);
    assert.ok(fired >= 900, `K=${k}: fired ${fired} of 1000`);
  }
});

test('the null law: exact for one candidate (a scaled Student t), and a decreasing tail', () => {
  // N = 1, K = 2: (mean - x) / s = sqrt(1 + 1/2) * t(1); the upper 5% point of t(1) is 6.3138.
  assert.ok(Math.abs(criticalValue(1, 2) - 6.3138 * Math.sqrt(1.5)) < 2e-3, String(criticalValue(1, 2)));
  assert.ok(Math.abs(criticalValue(1, 5) - 2.1318 * Math.sqrt(1.2)) < 2e-3, String(criticalValue(1, 5)));
  assert.ok(nullTail(0, 28, 3) > 0.9 && nullTail(3, 28, 3) > nullTail(6, 28, 3));
  assert.ok(criticalValue(100, 3) > criticalValue(10, 3), 'more candidates, a higher bar');
  assert.ok(criticalValue(28, 10) < criticalValue(28, 3), 'more seeds, a lower bar');
});

test('the comparison says "not enough reference seeds" until two have finished', () => {
  const { trials } = syntheticCampaign({ n: 20 });
  const one = withReference(trials, [0.2]);
  const r = compareWithReference(one, { planned: 3 })!;
  assert.equal(r.verdict, 'insufficient');
  assert.match(r.text, /not enough reference seeds: 1 of 3 reference seed\(s\) finished/);
  assert.equal(compareWithReference(trials), null);
  const clear = compareWithReference(withReference(trials, [0.5, 0.501, 0.502]))!;
  assert.equal(clear.verdict, 'better');
  assert.equal(clear.best.length, 3);
  assert.ok(clear.difference! < 0 && clear.threshold! > clear.best[0].error);
  const worse = compareWithReference(withReference(trials, [0.01, 0.011, 0.012]))!;
  assert.equal(worse.verdict, 'not-better');
});

test('status shows the best candidates against the uniform reference on a small campaign', () => {
  const dir = tempDir('ref-status');
  const out = join(dir, 'run');
  const r = cli(['search', writeTinySpace(dir), '--samples', '3', '--reference-seeds', '2', '--workers', '1', '--out', out, ...tinyFlags()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /plus 2 uniform reference trial\(s\)/);
  const reader = openCampaign(out, { readonly: true });
  const refs = reader.trials({ role: 'reference' });
  reader.close();
  assert.deepEqual(refs.map((t) => t.state), ['complete', 'complete']);
  const st = cli(['status', out]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /^uniform reference: flops [\d.]+K, widths [\d,]+; 2 of 2 seed\(s\) done: val [\d.]+%/m);
  assert.match(st.stdout, /^ {2}best #1: trial \d /m);
  assert.match(st.stdout, /^verdict: /m);
  // The reference's seeds are not among the best candidates.
  const best = st.stdout.split('best by validation error:')[1].split('uniform reference')[0];
  for (const t of refs) assert.doesNotMatch(best, new RegExp(`#${t.index} `));
  const json = JSON.parse(cli(['status', out, '--json']).stdout);
  assert.equal(json.reference.seeds.length, 2);
  assert.equal(json.reference.candidates, 3);
  const csv = readFileSync(join(out, 'trials.csv'), 'utf8');
  assert.equal(csv.split('\n').filter((l) => /^\d+,0,reference,/.test(l)).length, 2, 'trials.csv marks the reference by role');
});

test('--no-reference trains none; flags and campaign files are checked; a stored campaign compares its reference seeds', () => {
  const dir = tempDir('ref-flags');
  const space = writeTinySpace(dir);
  const out = join(dir, 'none');
  const r = cli(['search', space, '--samples', '1', '--no-reference', '--workers', '1', '--out', out, ...tinyFlags()]);
  assert.equal(r.status, 0, r.stderr);
  const reader = openCampaign(out, { readonly: true });
  assert.equal(reader.trials().length, 1);
  assert.equal(reader.config().reference?.seeds, 0);
  reader.close();
  const st = cli(['status', out]);
  assert.doesNotMatch(st.stdout, /uniform reference/);
  const both = cli(['search', space, '--samples', '1', '--no-reference', '--reference-seeds', '2', '--out', join(dir, 'x'), ...tinyFlags()]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /either --no-reference or --reference-seeds 2/);
  const negative = cli(['search', space, '--samples', '1', '--reference-seeds', '-1', '--out', join(dir, 'x'), ...tinyFlags()]);
  assert.equal(negative.status, 2);
  assert.match(negative.stderr, /--reference-seeds/);
  const file = join(dir, 'c.json');
  const campaign = { name: 'c', space: 'tiny.json', samples: 1, train: { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, lr: 0.05, augment: false }, launch: { backend: 'wasm', workers: 1 } };
  writeFileSync(file, JSON.stringify({ ...campaign, reference: { seeds: -1 } }));
  const bad = cli(['search', '--config', file, '--out', join(dir, 'y')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /c\.json: reference\.seeds: /);
  writeFileSync(file, JSON.stringify({ ...campaign, reference: { seeds: 0 } }));
  assert.equal(cli(['search', '--config', file, '--out', join(dir, 'y')]).status, 0);
  const diff = cli(['search', '--config', file, '--out', join(dir, 'y'), '--reference-seeds', '2']);
  assert.equal(diff.status, 2);
  assert.match(diff.stderr, /campaign\.json: reference\.seeds: stored 0, requested 2/);
  const help = cli(['search', '--help']);
  assert.match(help.stdout, /--reference-seeds <k>/);
  assert.match(help.stdout, /--no-reference/);
});

test('status reads a synthetic store with reference trials written through the store API', async () => {
  const c = syntheticCampaign({ n: 30 });
  const trials = withReference(c.trials, [0.3, 0.31, 0.32]);
  const dir = join(mkdtempSync(join(tmpdir(), 'ref-syn-')), 'run');
  await writeSyntheticStore(dir, { config: { ...c.config, settings: tinySettings(), reference: { seeds: 4 } }, trials });
  const st = cli(['status', dir]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /3 of 4 seed\(s\) done: val 31\.00% ± 1\.00% \(sd over 3 seeds\)/);
  assert.match(st.stdout, /^verdict: the best candidate beats the uniform reference beyond noise/m);
  assert.match(st.stdout, /failed #\d+ \(reference\)/);
});

/** Rung-0 errors z and top-rung errors correlated with them (the same run continued), promoted as successive halving does. */
function rungCampaign(rng: () => number, n: number, keep: number, correlation: number): { rung0: number[]; top: number[] } {
  const rung0 = normals(rng, n);
  const final = rung0.map((z) => correlation * z + Math.sqrt(1 - correlation * correlation) * gaussian(rng));
  const promoted = rung0.map((z, i) => [z, i] as const).sort((a, b) => a[0] - b[0]).slice(0, keep).map(([, i]) => i);
  return { rung0, top: promoted.map((i) => final[i]) };
}

test('rung campaigns: the best-of-N rule takes N from rung 0, since the top rung was selected on correlated rung-0 errors', (t) => {
  const sims = 4000;
  const rng = makeRng(12, 'reference-rungs');
  // 27 candidates, eta 3, 3 rungs: 3 reach the top. Under the null every final-budget error is a reference seed draw.
  for (const correlation of [1, 0.7]) {
    let right = 0;
    let wrong = 0;
    for (let i = 0; i < sims; i++) {
      const c = rungCampaign(rng, 27, 3, correlation);
      const seeds = normals(rng, 3);
      if (referenceDecision(c.top, seeds, 0.05, 27).verdict === 'better') right++;
      if (referenceDecision(c.top, seeds, 0.05, 3).verdict === 'better') wrong++;
    }
    const [lo, hi] = wilsonInterval(right, sims);
    t.diagnostic(`rung null, correlation ${correlation}: N = 27 (rung 0) fired ${(100 * right / sims).toFixed(2)}% (Wilson 95% ${(100 * lo).toFixed(1)}-${(100 * hi).toFixed(1)}%); N = 3 (top rung) fired ${(100 * wrong / sims).toFixed(2)}%`);
    assert.ok(lo <= 0.05, `N from rung 0 holds the level (correlation ${correlation})`);
    if (correlation === 1) assert.ok(right / sims >= 0.035, 'exact when rung 0 ranks perfectly');
    assert.ok(wrong / sims > 0.1, 'N = the top-rung count would fire far too often');
  }
});

test('compareWithReference in a rung campaign compares top-rung errors, with N = the candidates of rung 0', () => {
  const { trials } = syntheticCampaign({ n: 27 });
  const done = trials.filter((x) => x.state === 'complete');
  const ranked = [...done].sort((a, b) => a.valError! - b.valError!);
  const rung = (x: TrialRecord, r: number, e: number) => ({ rung: r, epochs: r + 1, valError: e, testError: e, trainLoss: 0.3, images: 100 });
  // Rung-0 errors are high (a short budget); the top three continue to rung 2, where their errors are the ones that count.
  const staged = trials.map((x) => {
    if (x.state !== 'complete') return x;
    const place = ranked.indexOf(x);
    const results = [rung(x, 0, x.valError! + 0.3)];
    if (place < 9) results.push(rung(x, 1, x.valError! + 0.1));
    if (place < 3) results.push(rung(x, 2, x.valError!));
    return { ...x, rung: results.length - 1, rungResults: results, state: place < 3 ? ('complete' as const) : ('pruned' as const) };
  });
  const refs = [0.3, 0.31, 0.305].map((e, k) => ({ ...trials[0], index: 100 + k, role: 'reference' as const, seedIndex: k, rung: 2, state: 'complete' as const, valError: e, testError: e, rungResults: [rung(trials[0], 2, e)] }));
  const r = compareWithReference([...staged, ...refs])!;
  assert.equal(r.basis, 'top-rung');
  assert.equal(r.topRung, 2);
  assert.equal(r.candidates, done.length);
  assert.equal(r.compared, 3);
  assert.deepEqual(r.best.map((o) => [o.index, o.error]), ranked.slice(0, 3).map((x) => [x.index, x.valError]));
  assert.equal(r.critical, criticalValue(done.length, 3));
  assert.match(r.text, /the best candidate beats the uniform reference beyond noise: .* the best of 26 would reach/);
  assert.equal(r.finalists, null);
  // Before any candidate reaches the top rung there is nothing to compare.
  const early = compareWithReference([...staged.map((x) => ({ ...x, rungResults: (x.rungResults ?? []).filter((y) => y.rung === 0) })), ...refs])!;
  assert.equal(early.verdict, 'insufficient');
  assert.match(early.text, /no candidate has reached the top rung \(rung 2\) yet/);
  // A flat campaign is unchanged: every candidate at its own error.
  const flat = compareWithReference(withReference(trials, [0.3, 0.31, 0.305]))!;
  assert.deepEqual([flat.basis, flat.candidates, flat.compared], ['final', done.length, done.length]);
});
