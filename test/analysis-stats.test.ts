import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyseCampaign } from '../src/analysis/analyse.js';
import { goodRange, percentileInterval } from '../src/analysis/bootstrap.js';
import { analyseRatio, bucketOf } from '../src/analysis/buckets.js';
import { compareEdfs } from '../src/analysis/compare.js';
import { complexityWeights, edf, edfAt, ksDistance, logBinEdges, summarize } from '../src/analysis/edf.js';
import { fitQuadratic, vertex } from '../src/analysis/fit.js';
import { binnedError } from '../src/analysis/metrics.js';
import { paretoFront } from '../src/analysis/pareto.js';
import { observations, type Observation } from '../src/analysis/population.js';
import { makeRng } from '../src/util/rng.js';
import { ratioObservations, syntheticCampaign } from './analysis-fixtures.js';

test('EDF is the share of trials at or below each error', () => {
  const f = edf([0.3, 0.1, 0.2, 0.2]);
  assert.deepEqual(f, [
    { error: 0.1, cumulative: 0.25 },
    { error: 0.2, cumulative: 0.75 },
    { error: 0.3, cumulative: 1 },
  ]);
  assert.equal(edfAt(f, 0.05), 0);
  assert.equal(edfAt(f, 0.25), 0.75);
  assert.equal(edfAt(f, 1), 1);
});

test('complexity weights make every occupied bin count equally', () => {
  const params = [1, 1, 1, 1, 1, 1, 100];
  const w = complexityWeights(params, logBinEdges(params, 2));
  assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  // Six trials at 1 share the weight of the single trial at 100.
  assert.ok(Math.abs(w[0] * 6 - w[6]) < 1e-12, `${w}`);
  assert.equal(complexityWeights([1000], logBinEdges(params, 2))[0], 0);
});

test('KS distance: 0 for identical samples, 1 for disjoint ones, symmetric', () => {
  const a = [0.1, 0.2, 0.3, 0.4];
  assert.equal(ksDistance(a, [...a].reverse()), 0);
  assert.equal(ksDistance(a, [0.5, 0.6]), 1);
  assert.equal(ksDistance([0.1, 0.3], [0.2, 0.4]), ksDistance([0.2, 0.4], [0.1, 0.3]));
  assert.equal(ksDistance([0.1, 0.3], [0.2, 0.4]), 0.5);
});

test('summary gives n, min, mean and quantiles, and stays defined on an empty population', () => {
  const s = summarize([0.4, 0.1, 0.2, 0.3]);
  assert.equal(s.n, 4);
  assert.equal(s.min, 0.1);
  assert.ok(Math.abs((s.mean as number) - 0.25) < 1e-12);
  assert.equal(summarize([]).quantiles, null);
});

test('good range concentrates where the planted winners sit', () => {
  const rng = makeRng(3, 'good-range-test');
  const values = Array.from({ length: 400 }, () => rng());
  // Error is lowest at metric 0.7.
  const errors = values.map((v) => Math.abs(v - 0.7) + 0.01 * rng());
  const r = goodRange(values, errors, { seed: 1 });
  assert.ok(r);
  assert.ok(r.lo > 0.6 && r.hi < 0.8 && Math.abs(r.mid - 0.7) < 0.03, JSON.stringify(r));
  // Same seed, same range.
  assert.deepEqual(goodRange(values, errors, { seed: 1 }), r);
  assert.deepEqual(percentileInterval([]), null);
});

test('quadratic fit recovers a planted vertex', () => {
  const xs = [-2, -1, 0, 1, 2, 3];
  const q = fitQuadratic(xs, xs.map((x) => 3 + 2 * (x - 0.5) ** 2));
  assert.ok(q && Math.abs((vertex(q) as number) - 0.5) < 1e-9 && Math.abs(q.c - 2) < 1e-9);
  assert.equal(fitQuadratic([1, 1, 2], [0, 0, 0]), null);
});

test('a planted optimal FLOPs/param ratio is recovered with an interval that covers it', () => {
  const obs = ratioObservations(200, (r) => 0.1 + 0.05 * (Math.log(r) - Math.log(120)) ** 2, 0.004);
  const a = analyseRatio(obs, { seed: 1, originalRatio: 114 });
  assert.ok(a.optimum, a.reasons.join('; '));
  assert.ok(Math.abs(Math.log(a.optimum.ratio / 120)) < 0.1, `optimum ${a.optimum.ratio}`);
  assert.ok(a.optimum.interval.lo <= 120 && a.optimum.interval.hi >= 120, JSON.stringify(a.optimum.interval));
  assert.ok(a.optimum.curvature > 0);
  assert.ok(a.bucketOptimum && !a.bucketOptimum.atEdge);
  assert.equal(a.buckets.length, 10);
  assert.equal(a.originalRatio, 114);
  assert.equal(a.buckets.reduce((s, b) => s + b.n, 0), 200);
});

test('flat data, edge optima and small samples report no optimum, with the reason', () => {
  const flat = analyseRatio(ratioObservations(200, () => 0.1, 0.01), { seed: 1 });
  assert.equal(flat.optimum, null);
  assert.ok(flat.reasons.length > 0);

  const rising = analyseRatio(ratioObservations(200, (r) => 0.1 + 0.05 * Math.log(r / 60), 0.003), { seed: 1 });
  assert.equal(rising.optimum, null);
  assert.ok(rising.reasons.some((r) => /edge|no minimum/.test(r)), rising.reasons.join('; '));
  assert.ok(rising.bucketOptimum?.atEdge);

  const few = analyseRatio(ratioObservations(10, (r) => 0.1 + 0.05 * (Math.log(r) - Math.log(120)) ** 2, 0.001), { seed: 1 });
  assert.equal(few.optimum, null);
  assert.ok(few.reasons.some((r) => /too few/.test(r)));

  assert.equal(analyseRatio([]).reasons.length, 1);
});

test('pure noise rarely yields an optimum claim (deterministic seeds)', () => {
  let claims = 0;
  for (let seed = 0; seed < 20; seed++) if (analyseRatio(ratioObservations(100, () => 0.1, 0.01, seed), { seed, samples: 400 }).optimum) claims++;
  assert.ok(claims <= 2, `${claims} of 20 flat populations claimed an optimum`);
});

test('parameter buckets hold equal counts and never split equal parameter counts', () => {
  const obs = [5, 1, 1, 1, 2, 3, 4, 6].map((params, index) => ({ index, params }) as Observation);
  const b = bucketOf(obs, 4);
  assert.equal(b[1], b[2]);
  assert.equal(b[2], b[3]);
  assert.deepEqual([...new Set(b)].sort(), [...Array(Math.max(...b) + 1).keys()]);
});

test('binned error and Pareto front', () => {
  const bins = binnedError([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1], 2, false);
  assert.deepEqual(bins.map((b) => b.n), [2, 2]);
  assert.ok(Math.abs((bins[0].mean as number) - 0.35) < 1e-12);
  const obs = [
    { index: 0, flops: 1, error: 0.3 },
    { index: 1, flops: 2, error: 0.35 },
    { index: 2, flops: 3, error: 0.2 },
    { index: 3, flops: 4, error: 0.25 },
  ] as Observation[];
  assert.deepEqual(paretoFront(obs).map((o) => o.index), [0, 2]);
});

test('campaign analysis: winners keep more of stage 3, optimum near the planted ratio, failed trials excluded', () => {
  const { config, trials } = syntheticCampaign({ n: 160, optimumRatio: 110 });
  const a = analyseCampaign({ name: config.name, net: config.net, trials, seed: 1 });
  assert.equal(a.obs.length, observations(trials).length);
  assert.ok(a.failed > 0);
  assert.ok(a.profile.stages.find((s) => s.stage === 3)!.winners > a.profile.stages.find((s) => s.stage === 3)!.all);
  const keep3 = a.metrics.find((m) => m.key === 'keep.stage3')!;
  assert.ok(keep3.goodRange && keep3.goodRange.mid > 0.6, JSON.stringify(keep3.goodRange));
  assert.ok(a.metrics.some((m) => m.key === 'width.stage2'));
  assert.ok(a.ratio.originalRatio && a.ratio.originalRatio > 100);
  if (a.ratio.optimum) assert.ok(Math.abs(Math.log(a.ratio.optimum.ratio / 110)) < 0.25, `${a.ratio.optimum.ratio}`);
  else assert.fail(a.ratio.reasons.join('; '));
});

test('EDF comparison: identical populations have KS 0, a shifted one does not', () => {
  const { trials } = syntheticCampaign({ n: 60 });
  const obs = observations(trials);
  const shifted = obs.map((o) => ({ ...o, error: o.error + 0.05 }));
  const [ref, same, worse] = compareEdfs([
    { label: 'a', obs },
    { label: 'b', obs },
    { label: 'c', obs: shifted },
  ]);
  assert.equal(ref.ks, null);
  assert.equal(same.ks, 0);
  assert.equal(same.ksNormalized, 0);
  assert.ok((worse.ks as number) > 0.5);
});
