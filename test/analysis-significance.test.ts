import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyseRatio } from '../src/analysis/buckets.js';
import { compareEdfs, compareRounds } from '../src/analysis/compare.js';
import { complexityWeights, logBinEdges, summarize } from '../src/analysis/edf.js';
import type { Observation } from '../src/analysis/population.js';
import { centred, maxTAdjust, ranksInto, residualizer } from '../src/analysis/max-t.js';
import { wilsonInterval } from '../src/analysis/calibration.js';
import { holmAdjust, incompleteBeta, normalCdf, rankSumLess, spearmanPValue, studentTwoSided } from '../src/analysis/significance.js';
import { makeRng } from '../src/util/rng.js';
import { gaussian, ratioObservations } from './analysis-fixtures.js';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('distribution functions match tabulated values', () => {
  close(studentTwoSided(2, 10), 0.073388, 1e-6);
  close(studentTwoSided(1, 1), 0.5, 1e-12);
  close(studentTwoSided(2.262157, 9), 0.05, 1e-6);
  close(normalCdf(1.959964), 0.975, 1e-6);
  close(normalCdf(-1), 0.158655, 1e-6);
  close(incompleteBeta(0.3, 2, 3), 0.3483, 1e-12);
  // rho 0.5 over 20 pairs: t = 2.449 on 18 df.
  close(spearmanPValue(0.5, 20), 0.024770, 1e-5);
  assert.equal(spearmanPValue(0.9, 3), 1);
});

test('rank-sum test: exact small cases, ties and the normal branch', () => {
  assert.deepEqual(rankSumLess([1, 2, 3], [4, 5, 6]), { w: 6, p: 0.05, minP: 0.05, method: 'exact' });
  assert.equal(rankSumLess([1, 2, 4], [3, 5, 6]).p, 0.1);
  // Ties: scores {2,2,2,4,5}; 4 of the 10 size-3 subsets have a sum at most the observed 8.
  close(rankSumLess([1, 1, 2], [1, 3]).p, 0.4, 1e-12);
  assert.equal(rankSumLess([], [1]).p, 1);
  // A large sample takes the normal approximation and still finds a shift.
  const a = Array.from({ length: 40 }, (_, i) => i);
  const b = Array.from({ length: 40 }, (_, i) => i + 15);
  const r = rankSumLess(a, b);
  assert.equal(r.method, 'normal');
  assert.ok(r.p < 0.01 && rankSumLess(b, a).p > 0.99, `${r.p}`);
});

test('rank-sum p-values hold their level on noise (exact and normal branches)', () => {
  const rng = makeRng(4, 'rank-sum-null');
  for (const [m, n] of [[6, 18], [40, 60]]) {
    let hits = 0;
    const reps = 400;
    for (let s = 0; s < reps; s++) {
      const x = Array.from({ length: m }, () => gaussian(rng));
      const y = Array.from({ length: n }, () => gaussian(rng));
      if (rankSumLess(x, y).p <= 0.1) hits++;
    }
    // Level 0.1; 400 draws give a Monte Carlo standard error of 0.015.
    assert.ok(hits / reps <= 0.14, `${m}+${n}: ${hits}/${reps}`);
  }
});

test('Holm adjustment: step-down, monotone, capped at 1', () => {
  assert.deepEqual(holmAdjust([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5]);
  assert.deepEqual(holmAdjust([0.6, 0.6]), [1, 1]);
  assert.deepEqual(holmAdjust([]), []);
});

test('log bins keep their extremes: [50000, 185013] and random ranges lose no trial', () => {
  const values = [50000, 100000, 185013];
  const w = complexityWeights(values, logBinEdges(values, 10));
  assert.ok(w.every((x) => x > 0), `${w}`);
  close(w.reduce((s, x) => s + x, 0), 1, 1e-12);
  const rng = makeRng(2, 'bins');
  for (let s = 0; s < 500; s++) {
    const lo = Math.floor(1000 + rng() * 1e6);
    const xs = [lo, Math.floor(lo * (1 + 10 * rng())) + 1, lo + Math.floor(rng() * 1000)];
    const ws = complexityWeights(xs, logBinEdges(xs, 1 + Math.floor(rng() * 12)));
    assert.ok(ws.every((x) => x > 0), `${xs}: ${ws}`);
  }
});

test('quantiles follow simple-statistics 7.12 (linear interpolation between order statistics)', () => {
  assert.deepEqual(summarize([4, 1, 3, 2]).quantiles, { p10: 1.3, p25: 1.75, p50: 2.5, p75: 3.25, p90: 3.7 });
});

const obsAt = (params: number[], errors: number[]): Observation[] =>
  params.map((p, i) => ({ index: i, round: 0, error: errors[i], testError: null, widths: [], flops: 1e7, params: p, activations: 1, ratio: 1e7 / p }));

test('normalised KS compares populations on the parameter bins both occupy, and says how much of each that keeps', () => {
  // The reference spans small and large networks; the other only large ones, with the same errors there.
  const ref = obsAt([100, 100, 110, 110, 1000, 1000, 1100, 1100], [0.5, 0.5, 0.5, 0.5, 0.2, 0.3, 0.2, 0.3]);
  const narrow = obsAt([1000, 1000, 1100, 1100], [0.2, 0.3, 0.2, 0.3]);
  const [, other] = compareEdfs([{ label: 'ref', obs: ref }, { label: 'narrow', obs: narrow }], 4);
  assert.equal(other.ksNormalized, 0);
  assert.deepEqual(other.sharedShare, { reference: 0.5, population: 1 });
  assert.ok((other.ks as number) > 0.4);
  // Disjoint populations share no bin: no normalised KS.
  const [, apart] = compareEdfs([{ label: 'ref', obs: obsAt([100, 110], [0.5, 0.4]) }, { label: 'far', obs: obsAt([1000, 1100], [0.3, 0.2]) }], 4);
  assert.equal(apart.ksNormalized, null);
  assert.deepEqual(apart.sharedShare, { reference: 0, population: 0 });
});

test('round comparison: permutation p-value small for a real shift, not for the same distribution', () => {
  const rng = makeRng(9, 'rounds');
  const parent = Array.from({ length: 48 }, () => 0.3 + 0.01 * gaussian(rng));
  const same = Array.from({ length: 24 }, () => 0.3 + 0.01 * gaussian(rng));
  const better = same.map((e) => e - 0.015);
  const shifted = compareRounds(parent, better, { permutations: 400, seed: 1 })!;
  assert.ok(shifted.pValue < 0.01, `${shifted.pValue}`);
  const null1 = compareRounds(parent, same, { permutations: 400, seed: 1 })!;
  assert.ok(null1.pValue > 0.05, `${null1.pValue}`);
  assert.equal(compareRounds([], same), null);
  // Deterministic for a seed.
  assert.deepEqual(compareRounds(parent, same, { permutations: 100, seed: 3 }), compareRounds(parent, same, { permutations: 100, seed: 3 }));
});

test('the optimum interval counts resamples without an interior minimum at the edge they point to', () => {
  // A minimum close to the upper edge of the sampled ratios: some resamples put it beyond.
  const obs = ratioObservations(120, (r) => 0.1 + 0.05 * (Math.log(r) - Math.log(200)) ** 2, 0.01, 3);
  const a = analyseRatio(obs, { seed: 1, minInteriorShare: 0 });
  assert.ok(a.optimum, a.reasons.join('; '));
  const o = a.optimum;
  close(o.edgeShare, 1 - o.interiorShare, 1e-12);
  assert.ok(o.edgeShare > 0.025, `edge share ${o.edgeShare}`);
  const maxRatio = Math.max(...obs.map((x) => x.ratio));
  close(o.interval.hi, maxRatio, 1e-6 * maxRatio);
});

test('max-T helpers: mid-ranks with ties, residuals orthogonal to the covariates', () => {
  const v = Float64Array.from([3, 1, 3, 2]);
  const out = new Float64Array(4);
  ranksInto(v, new Int32Array(4), out);
  assert.deepEqual([...out], [3.5, 1, 3.5, 2]);
  const x = [0, 1, 2, 3, 4, 5];
  const y = Float64Array.from(x, (t) => 1 + 2 * t - 0.5 * t * t);
  residualizer([x, x.map((t) => t * t)], 6)(y);
  for (const r of y) assert.ok(Math.abs(r) < 1e-9, `${[...y]}`);
  // A constant covariate adds nothing and is dropped (it would only repeat the intercept).
  const z = Float64Array.from([1, 2, 3]);
  residualizer([[5, 5, 5]], 3)(z);
  [-1, 0, 1].forEach((e, i) => assert.ok(Math.abs(z[i] - e) < 1e-9, `${[...z]}`));
});

test('max-T: one contrast on noise rejects at about alpha; a planted effect is found; tiers share alpha', () => {
  const rng = makeRng(9, 'max-t');
  const n = 40;
  const feature = Array.from({ length: n }, (_, i) => i);
  const contrasts = [{ scores: centred(feature), twoSided: true }, ...Array.from({ length: 5 }, () => ({ scores: centred(feature.map(() => rng())), twoSided: true }))];
  let single = 0;
  let family = 0;
  const reps = 400;
  for (let r = 0; r < reps; r++) {
    const errors = feature.map(() => gaussian(rng));
    if (maxTAdjust(errors, contrasts.slice(0, 1), { permutations: 99, seed: r }).adjustedP[0] <= 0.1) single++;
    const p = maxTAdjust(errors, contrasts, { permutations: 99, seed: r, tiers: [0, 1, 1, 1, 1, 1], weights: [0.5, 0.5] }).adjustedP;
    if (p.some((x) => x <= 0.1)) family++;
  }
  // Both rates sit near 10%: within a Wilson 95% interval of 400 draws, and not far below.
  for (const hits of [single, family]) {
    const [lo, hi] = wilsonInterval(hits, reps);
    assert.ok(lo <= 0.1 && hi >= 0.1 && hits / reps >= 0.06, `${single} ${family} of ${reps}`);
  }
  const planted = feature.map((t) => -0.08 * t + gaussian(rng));
  const p = maxTAdjust(planted, contrasts, { permutations: 199, seed: 1, tiers: [0, 1, 1, 1, 1, 1], weights: [0.5, 0.5] });
  assert.ok(p.z[0] > 3 && p.adjustedP[0] <= 0.01, `${p.z[0]} ${p.adjustedP[0]}`);
});
