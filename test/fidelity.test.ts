/**
 * Fidelity diagnostics: pooled seed noise, the structure share's F interval (coverage measured over simulated
 * campaigns with known variance components), the 30% rule's firing rates, and Spearman of rung 0 against the top rung.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fidelity, fidelityLines, fQuantile, pooledSeedNoise, spearmanWithInterval, structureShare, STRUCTURE_FLOOR } from '../src/analysis/fidelity.js';
import { normalDraw } from '../src/util/rng.js';
import type { TrialLike } from '../src/analysis/population.js';
import { makeRng, type Rng } from '../src/util/rng.js';

test('F quantiles match reference values (scipy.stats.f.ppf)', () => {
  assert.ok(Math.abs(fQuantile(0.975, 5, 10) - 4.236085668188632) < 1e-9);
  assert.ok(Math.abs(fQuantile(0.025, 5, 10) - 0.151076701029982) < 1e-9);
  assert.ok(Math.abs(fQuantile(0.95, 1, 1000) - 3.8507746681386323) < 1e-9);
});

test('pooled seed noise: within-configuration mean square, seeds minus configurations degrees of freedom', () => {
  // Groups {1,3} (SS 2) and {10,12,14} (SS 8); a lone seed adds nothing.
  const s = pooledSeedNoise([[1, 3], [10, 12, 14], [7]]);
  assert.equal(s.df, 3);
  assert.ok(Math.abs(s.sd! - Math.sqrt(10 / 3)) < 1e-12);
  assert.deepEqual([s.configurations, s.seeds], [2, 5]);
  assert.equal(pooledSeedNoise([[1], [2]]).sd, null);
});

/** A rung campaign's records: n candidates (structure + seed noise at rung 0), a reference and two finalists of three seeds. */
function simulatedCampaign(rng: Rng, n: number, share: number, seeds = 3): TrialLike[] {
  const structureSd = Math.sqrt(share);
  const seedSd = Math.sqrt(1 - share);
  const record = (index: number, role: TrialLike['role'], rung0: number, top: number | null, extra: Partial<TrialLike> = {}): TrialLike => ({
    index, round: 0, role, widths: [index], complexity: { flops: 1, params: 1, activations: 1 }, state: 'complete',
    valError: top ?? rung0, testError: null, rung: top === null ? 0 : 1,
    rungResults: [{ rung: 0, epochs: 1, valError: rung0, testError: null, trainLoss: null, images: 1 }, ...(top === null ? [] : [{ rung: 1, epochs: 2, valError: top, testError: null, trainLoss: null, images: 1 }])],
    ...extra,
  });
  const out: TrialLike[] = [];
  for (let i = 0; i < n; i++) out.push(record(i, 'sample', structureSd * normalDraw(rng) + seedSd * normalDraw(rng), null));
  const group = (role: 'reference' | 'finalist', of?: number) => {
    const mean = structureSd * normalDraw(rng);
    for (let k = 0; k < seeds; k++) {
      const e = mean + seedSd * normalDraw(rng);
      out.push(record(out.length, role, e, e + 0.5 * seedSd * normalDraw(rng), { seedIndex: k, ...(of !== undefined ? { finalistOf: of } : {}), widths: [role === 'reference' ? -1 : -2 - of!] }));
    }
  };
  group('reference');
  group('finalist', 0);
  group('finalist', 1);
  return out;
}

test('structure share: the 95% F interval covers the true share at its nominal rate (2000 simulated campaigns per share)', () => {
  for (const share of [0.2, 0.5, 0.8]) {
    const rng = makeRng(11, `coverage/${share}`);
    let covered = 0;
    const sims = 2000;
    for (let i = 0; i < sims; i++) {
      const f = fidelity(simulatedCampaign(rng, 48, share));
      assert.equal(f.seedNoise.rung0.df, 6);
      const [lo, hi] = f.structure.interval!;
      if (lo <= share && share <= hi) covered++;
    }
    const rate = covered / sims;
    console.log(`structure share ${share}: 95% interval coverage ${rate} over ${sims} campaigns`);
    // Exact under normal errors: the measured rate sits within 4 standard errors (0.02) of 0.95.
    assert.ok(Math.abs(rate - 0.95) < 0.02, `share ${share}: coverage ${rate}`);
  }
});

test('the 30% rule: how often it fires with little structure and with plenty (48 candidates, 6 seed df)', () => {
  const rate = (share: number) => {
    const rng = makeRng(12, `rule/${share}`);
    let fired = 0;
    for (let i = 0; i < 1000; i++) if (fidelity(simulatedCampaign(rng, 48, share)).warning !== null) fired++;
    return fired / 1000;
  };
  const noise = rate(0);
  const weak = rate(0.1);
  const strong = rate(0.7);
  console.log(`30% rule fires: share 0 ${noise}, share 0.1 ${weak}, share 0.7 ${strong} (1000 campaigns each)`);
  // Six seed degrees of freedom estimate the seed variance loosely: the rule catches most campaigns without structure
  // and seldom accuses one where 70% of the variance is structure.
  assert.ok(noise > 0.55, `fires on pure noise in ${noise}`);
  assert.ok(weak > 0.5, `fires at share 0.1 in ${weak}`);
  assert.ok(strong < 0.1, `fires at share 0.7 in ${strong}`);
  const msg = fidelity(simulatedCampaign(makeRng(3, 'msg'), 48, 0), { rungs: { rungs: 3, eta: 3 } });
  if (msg.warning) assert.match(msg.warning, /mostly seed noise: structure explains \d+% of rung-0 variance .*df 6\).*--epochs.*1\/9/);
});

test('structure share among the promoted: near the truth without structure, below the population\'s with it (selection on the rung below)', () => {
  // 160 candidates; rung 0 error = structure + seed noise, rung 1 = the same structure + noise half as large; the best
  // quarter at rung 0 is promoted. Seed noise at rung 1 from a reference of 40 seeds, so the seed sd is nearly exact.
  const simulate = (share: number): { mean: number; excludesZero: number } => {
    const rng = makeRng(3, `promoted/${share}`);
    let total = 0;
    let excludesZero = 0;
    const sims = 300;
    for (let i = 0; i < sims; i++) {
      const s = Math.sqrt(share);
      const n = Math.sqrt(1 - share);
      const rec = (index: number, role: TrialLike['role'], e0: number, e1: number | null): TrialLike => ({
        index, round: 0, role, widths: role === 'reference' ? [-1] : [index], complexity: { flops: 1, params: 1, activations: 1 }, state: 'complete',
        valError: e1 ?? e0, testError: null, rung: e1 === null ? 0 : 1, ...(role === 'reference' ? { seedIndex: index } : {}),
        rungResults: [{ rung: 0, epochs: 1, valError: e0, testError: null, trainLoss: null, images: 1 }, ...(e1 === null ? [] : [{ rung: 1, epochs: 4, valError: e1, testError: null, trainLoss: null, images: 1 }])],
      });
      const structure = Array.from({ length: 160 }, () => s * normalDraw(rng));
      const rung0 = structure.map((x) => x + n * normalDraw(rng));
      const cut = [...rung0].sort((a, b) => a - b)[39];
      const trials = structure.map((x, k) => rec(k, 'sample', rung0[k], rung0[k] <= cut ? x + 0.5 * n * normalDraw(rng) : null));
      for (let k = 0; k < 40; k++) trials.push(rec(1000 + k, 'reference', n * normalDraw(rng), 0.5 * n * normalDraw(rng)));
      const f = fidelity(trials, { rungs: { rungs: 2, eta: 4 } });
      assert.equal(f.promoted[0].structure.populationN, 40);
      total += f.promoted[0].structure.share!;
      if (f.promoted[0].structure.interval![0] > 0) excludesZero++;
    }
    return { mean: total / sims, excludesZero: excludesZero / sims };
  };
  const none = simulate(0);
  const half = simulate(0.5);
  // With half the rung-0 variance structural, the whole population's share at rung 1 is 1 / (1 + 0.25) = 0.8; the
  // promoted, picked on a noisy rung 0, keep about 60% of the structural variance: 0.6 / 0.85 = 0.71.
  console.log(`structure share among the promoted: interval above 0 in ${none.excludesZero} of campaigns without structure; mean ${half.mean.toFixed(3)} at 80% (population), interval above 0 in ${half.excludesZero}`);
  // Without structure the interval's lower end passes 0 only in its upper tail, 2.5% (sd 0.9% over 300 campaigns).
  assert.ok(none.excludesZero < 0.055, `no structure: the interval excludes 0 in ${none.excludesZero}`);
  assert.ok(half.mean > 0.64 && half.mean < 0.77, `half structural: mean share ${half.mean}`);
  assert.ok(half.excludesZero > 0.95, `half structural: the interval excludes 0 in ${half.excludesZero}`);
});

test('structure share: none without seed degrees of freedom or population spread; clamped to [0, 1]', () => {
  assert.equal(structureShare([[1, 2, 3]], { sd: null, df: 0 }).share, null);
  assert.equal(structureShare([[1, 1, 1]], { sd: 1, df: 2 }).share, null);
  const noisy = structureShare([[0, 0.1, 0.2]], { sd: 5, df: 4 });
  assert.equal(noisy.share, 0);
  assert.ok(noisy.interval![0] === 0 && noisy.interval![1] >= 0);
});

test('Spearman: exact on monotone data, near the planted correlation, Fisher z interval near its nominal coverage', () => {
  assert.equal(spearmanWithInterval([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]).rho, 1);
  assert.equal(spearmanWithInterval([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]).rho, -1);
  assert.equal(spearmanWithInterval([1, 2], [1, 2]).rho, null);
  // Bivariate normal with correlation r: Spearman's population value is (6/π) asin(r/2).
  const r = 0.7;
  const truth = (6 / Math.PI) * Math.asin(r / 2);
  const rng = makeRng(5, 'spearman');
  const n = 16;
  let covered = 0;
  let sum = 0;
  const sims = 2000;
  for (let i = 0; i < sims; i++) {
    const x: number[] = [];
    const y: number[] = [];
    for (let k = 0; k < n; k++) {
      const a = normalDraw(rng);
      x.push(a);
      y.push(r * a + Math.sqrt(1 - r * r) * normalDraw(rng));
    }
    const s = spearmanWithInterval(x, y);
    sum += s.rho!;
    if (s.interval![0] <= truth && truth <= s.interval![1]) covered++;
  }
  // The sample ρ's expectation over n pairs: (6 / (π (n + 1))) (asin r + (n − 2) asin(r / 2)).
  const expected = (6 / (Math.PI * (n + 1))) * (Math.asin(r) + (n - 2) * Math.asin(r / 2));
  assert.ok(Math.abs(sum / sims - expected) < 0.01, `mean ρ ${sum / sims} against ${expected}`);
  console.log(`Fisher z coverage of Spearman at n ${n}: ${covered / sims}`);
  assert.ok(Math.abs(covered / sims - 0.95) < 0.03, `coverage ${covered / sims}`);
});

test('a campaign: seed sd at rung 0 and the top from reference and finalist seeds, ranking over the promoted only', () => {
  const rec = (index: number, role: TrialLike['role'], errors: number[], extra: Partial<TrialLike> = {}): TrialLike => ({
    index, round: 0, role, widths: [index], complexity: { flops: 1, params: 1, activations: 1 }, state: 'complete', valError: errors.at(-1)!,
    testError: null, rung: errors.length - 1, rungResults: errors.map((valError, rung) => ({ rung, epochs: rung + 1, valError, testError: null, trainLoss: null, images: 1 })), ...extra,
  });
  const trials = [
    ...[0.5, 0.4, 0.3, 0.2, 0.1, 0.6].map((e, i) => rec(i, 'sample', [e])),
    ...[[0.1, 0.05], [0.2, 0.15], [0.3, 0.35], [0.4, 0.3]].map((e, i) => rec(6 + i, 'sample', e)),
    rec(10, 'reference', [0.3, 0.2], { widths: [9], seedIndex: 0 }), rec(11, 'reference', [0.32, 0.24], { widths: [9], seedIndex: 1 }),
    rec(12, 'finalist', [0.1, 0.06], { widths: [6], finalistOf: 6, seedIndex: 0 }), rec(13, 'finalist', [0.14, 0.04], { widths: [6], finalistOf: 6, seedIndex: 1 }),
  ];
  const f = fidelity(trials);
  assert.equal(f.topRung, 1);
  // Rung 0: SS 0.0002 + 0.0008 over 2 df; top: 0.0008 + 0.0002.
  assert.ok(Math.abs(f.seedNoise.rung0.sd! - Math.sqrt(0.001 / 2)) < 1e-12);
  assert.ok(Math.abs(f.seedNoise.top.sd! - Math.sqrt(0.001 / 2)) < 1e-12);
  assert.equal(f.seedNoise.top.df, 2);
  assert.equal(f.structure.populationN, 10, 'the population is the candidates, at rung 0');
  assert.deepEqual([f.ranking.n, f.ranking.rho], [4, 0.8]);
  // Rung 1 among the 4 promoted: variance 0.056875 / 3 against the seed variance 0.0005 there.
  assert.deepEqual(f.promoted.map((p) => [p.rung, p.structure.populationN, p.seed.df]), [[1, 4, 2]]);
  assert.ok(Math.abs(f.promoted[0].structure.share! - (1 - 0.0005 / (0.056875 / 3))) < 1e-9);
  assert.match(fidelityLines(f)[2], /^structure share at rung 1 among the 4 promoted: 97% .*errs low for the whole population$/);
  // A second round of the same spread around another mean leaves the within-round population sd as it was.
  const shifted = trials.filter((t) => (t.role ?? 'sample') === 'sample').map((t) => ({ ...t, index: t.index + 100, round: 1, rungResults: t.rungResults!.map((r) => ({ ...r, valError: r.valError + 10 })) }));
  const two = fidelity([...trials, ...shifted]);
  assert.equal(two.structure.populationN, 20);
  assert.ok(Math.abs(two.structure.populationSd! - f.structure.populationSd!) < 0.01 * f.structure.populationSd!, `${two.structure.populationSd} vs ${f.structure.populationSd}`);
  // A flat campaign: its seeds are at rung 0, which is its top; nothing is promoted.
  const flat = fidelity([...[0.5, 0.4, 0.3].map((e, i) => rec(i, 'sample', [e])), rec(3, 'reference', [0.2], { widths: [9] }), rec(4, 'reference', [0.5], { widths: [9] })]);
  assert.equal(flat.topRung, 0);
  assert.equal(flat.seedNoise.top, flat.seedNoise.rung0);
  assert.equal(flat.ranking.n, 0);
  assert.equal(flat.structure.share, 0);
  assert.ok(flat.warning !== null && !/--rungs R/.test(flat.warning));
  assert.ok(STRUCTURE_FLOOR === 0.3);
  assert.equal(fidelityLines(flat).length, 4 - 1, 'flat: seed sd, structure share, the warning; no ranking line');
  // No configuration with two seeds: one line saying what is missing.
  const unmeasured = fidelityLines(fidelity(trials.filter((t) => t.role === 'sample')));
  assert.equal(unmeasured.length, 1);
  assert.match(unmeasured[0], /^seed sd: not measured \(needs a configuration trained with 2 or more seeds/);
});
