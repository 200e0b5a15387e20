import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyseCampaign } from '../src/analysis/analyse.js';
import { best, defaultTopK } from '../src/analysis/population.js';
import { widthProfile } from '../src/analysis/profiles.js';
import { decideRules, refineSpace, trendWidths } from '../src/analysis/refine.js';
import { generation } from '../src/analysis/refine-campaign.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace, parseSpace, writeSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { makeRng } from '../src/util/rng.js';
import { gaussian, r20Space, syntheticCampaign } from './analysis-fixtures.js';

const parent = parseSpace(r20Space, 'spaces/r20-test.json');

test('refinement around a planted optimum: ratio window covers it, child is a sampleable subset of the parent', () => {
  const { config, trials } = syntheticCampaign({ n: 160, optimumRatio: 110 });
  const analysis = analyseCampaign({ name: 'syn', net: config.net, trials, seed: 1 });
  const r = refineSpace(parent, analysis, { name: 'r20-test.r1', parentRef: 'r20-test.json', campaign: { dir: 'runs/syn' }, seed: 1, date: '2026-01-01' });
  const ratio = r.outcomes.find((o) => o.rule === 'ratio')!;
  assert.ok(ratio.applied, ratio.reason);
  const window = r.child.regime.flopsPerParam!;
  // The optimum sits low in the sampled ratios (and wide stage 3 helps too), so the change cuts the high tail.
  assert.ok((window.min ?? 0) < analysis.ratio.optimum!.ratio && (window.max ?? Infinity) > analysis.ratio.optimum!.ratio, JSON.stringify(window));
  // Every outcome carries a reason; the applied change was accepted by the family-wise test.
  for (const o of r.outcomes) assert.ok(o.reason.length > 10, o.rule);
  assert.ok(ratio.test!.accepted && ratio.test!.adjustedP <= 0.1, JSON.stringify(ratio.test));
  assert.equal(r.child.parent, 'r20-test.json');
  const prov = r.child.provenance as { rules: unknown[]; validation: { method: string; candidates: number; permutations: number; alpha: number; errors: string } };
  assert.equal(prov.rules.length, 3);
  assert.match(prov.validation.method, /max-T/);
  assert.match(prov.validation.errors, /rung 0/);
  assert.ok(prov.validation.candidates > 12 && prov.validation.permutations === 999 && prov.validation.alpha === 0.1, JSON.stringify(prov.validation));
  assert.ok(r.kept.share > 0 && r.kept.share < 1, `kept ${r.kept.share}`);

  const child = compileSpace(parseSpace(r.child, 'child.json'));
  const parentCompiled = compileSpace(parent);
  for (const c of sampleSpace(child, 50, 3).configs) assert.ok(parentCompiled.contains(c.widths), `${c.widths}`);

  // The child round-trips through the space file format.
  const dir = mkdtempSync(join(tmpdir(), 'refine-'));
  writeSpace(join(dir, 'child.json'), r.child);
  assert.equal(loadSpace(join(dir, 'child.json')).file.name, 'r20-test.r1');
});

test('without support every rule is skipped with its reason, and the child equals the parent', () => {
  const { config, trials } = syntheticCampaign({ n: 12 });
  const analysis = analyseCampaign({ name: 'few', net: config.net, trials, seed: 1 });
  const r = refineSpace(parent, analysis, { name: 'few.r1', parentRef: 'p.json', campaign: {}, seed: 1 });
  assert.ok(r.outcomes.every((o) => !o.applied));
  assert.match(r.outcomes.find((o) => o.rule === 'ratio')!.reason, /too few/);
  assert.equal(r.kept.share, 1);
  assert.deepEqual(r.child.regime, parent.file.regime);
});

test('only the requested rules run', () => {
  const { config, trials } = syntheticCampaign({ n: 80 });
  const analysis = analyseCampaign({ name: 's', net: config.net, trials, seed: 1 });
  const r = refineSpace(parent, analysis, { name: 's.r1', parentRef: 'p.json', campaign: {}, seed: 1, rules: ['monotone'] });
  assert.deepEqual(r.outcomes.map((o) => o.rule), ['monotone']);
  assert.equal(r.child.regime.flopsPerParam, undefined);
});

test('an optimum at the edge of the sampled ratios with a supported trend narrows one-sided, cutting the worse tail', () => {
  // Error keeps falling towards the highest sampled FLOPs/param: the optimum lies beyond the upper edge.
  const rng = makeRng(3, 'edge');
  const input = plantedInput(96, (_, __, ratio) => 0.3 - 0.02 * Math.log(ratio) + 0.004 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['ratio'] });
  const ratio = d.outcomes[0];
  assert.ok(ratio.applied, ratio.reason);
  assert.equal(ratio.test!.candidate, 'ratio:trend');
  assert.ok(ratio.test!.z > 0, JSON.stringify(ratio.test));
  const ev = ratio.evidence as { kind: string; cut: number; keeps: string };
  assert.equal(ev.kind, 'one-sided');
  assert.equal(ev.keeps, 'above');
  assert.match(ratio.reason, /one-sided window/);
  const child = structuredClone(parent.file);
  for (const a of d.apply) a.apply(child);
  assert.ok(child.regime.flopsPerParam!.min! > 0 && child.regime.flopsPerParam!.max === undefined, JSON.stringify(child.regime));
  // About the worse third of the trials (the lowest ratios) is cut.
  const cut = input.obs.filter((o) => o.ratio < ev.cut).length;
  assert.ok(Math.abs(cut - 32) <= 1, `${cut}`);
});

test('an interior optimum keeps a two-sided window around it; a window must beat both sides', () => {
  const rng = makeRng(6, 'interior');
  const input = plantedInput(96, (_, __, ratio) => 0.2 + 0.05 * Math.log(ratio / 130) ** 2 + 0.003 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['ratio'] });
  const ratio = d.outcomes[0];
  assert.ok(ratio.applied, ratio.reason);
  assert.match(ratio.test!.candidate, /^ratio:window/);
  const ev = ratio.evidence as { kind: string; window: [number, number] };
  assert.equal(ev.kind, 'two-sided');
  assert.ok(ev.window[0] < 130 && ev.window[1] > 130, JSON.stringify(ev));
  assert.match(ratio.reason, /two-sided window/);
  // A steady trend passes the trend test but no window: every window loses to one of its sides.
  const trend = plantedInput(96, (_, __, r) => 0.3 - 0.02 * Math.log(r) + 0.004 * gaussian(rng));
  const t = decideRules(parent, trend, { seed: 1, rules: ['ratio'] }).outcomes[0];
  const windows = Object.entries((t.evidence as { candidates: Record<string, { adjustedP: number }> }).candidates).filter(([k]) => k.startsWith('ratio:window'));
  assert.ok(windows.length > 0 && windows.every(([, c]) => c.adjustedP > 0.1), JSON.stringify(windows));
});

test('the decision is seeded: the same seed gives the same adjusted p-values, another seed close ones', () => {
  const rng = makeRng(5, 'seeded');
  const input = plantedInput(48, (w) => 0.3 - 0.01 * (w[2] / 64) + 0.005 * gaussian(rng));
  const a = decideRules(parent, input, { seed: 1 });
  assert.deepEqual(decideRules(parent, input, { seed: 1 }).outcomes, a.outcomes);
  const b = decideRules(parent, input, { seed: 2 });
  const p = (d: typeof a) => d.outcomes.map((o) => o.test?.adjustedP ?? 1);
  p(a).forEach((x, i) => assert.ok(Math.abs(x - p(b)[i]) < 0.1, `${p(a)} ${p(b)}`));
});

test('refined space names count generations', () => {
  assert.equal(generation('resnet20-fmnist'), 0);
  assert.equal(generation('run.r2'), 2);
});

/** Round-0 observations of sampled r20 configurations with errors from `errorOf`. */
function plantedInput(n: number, errorOf: (widths: number[], i: number, ratio: number) => number) {
  const compiled = compileSpace(parent);
  const obs = sampleSpace(compiled, n, 11).configs.map((c, i) => ({
    index: i, round: 0, error: errorOf(c.widths, i, c.complexity.flops / c.complexity.params), testError: null, widths: c.widths,
    flops: c.complexity.flops, params: c.complexity.params, activations: c.complexity.activations, ratio: c.complexity.flops / c.complexity.params,
  }));
  return { obs, spec: compiled.net, originalRatio: 114.4, profile: widthProfile(obs, best(obs, defaultTopK(n)), compiled.net.groups) };
}

test('ranges: every group is in the family with its adjusted p-value, and the worse tail of the correlated group goes', () => {
  const rng = makeRng(2, 'ranges');
  // Wider stage 3 is better; nothing else matters.
  const input = plantedInput(160, (w) => 0.3 - 0.05 * (w[2] / 64) + 0.004 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['ranges'] });
  const ranges = d.outcomes[0];
  assert.ok(ranges.applied, ranges.reason);
  const groups = (ranges.evidence as { groups: Record<string, { spearman: number; z: number; adjustedP: number; verdict?: string; childWidths?: number[]; parentWidths: number[] }> }).groups;
  assert.equal(Object.keys(groups).length, 12);
  for (const g of Object.values(groups)) assert.ok(g.adjustedP > 0 && g.adjustedP <= 1);
  const s3 = groups.stage3;
  assert.equal(s3.verdict, 'narrowed');
  assert.ok(s3.spearman < 0 && s3.z > 0 && s3.childWidths![0] > s3.parentWidths[0] && s3.childWidths![1] === s3.parentWidths[1], JSON.stringify(s3));
  // Stage 3 is the strongest; groups that trade FLOPs against it inside the regime may follow (a marginal association).
  assert.equal(ranges.test!.candidate, 'ranges:stage3');
});

test('trendWidths cuts the worse share of the allowed widths, at least one, never all', () => {
  const widths = [16, 24, 32, 40, 48, 56, 64];
  assert.deepEqual(trendWidths(widths, true, 1 / 3), [32, 40, 48, 56, 64]);
  assert.deepEqual(trendWidths(widths, false, 1 / 3), [16, 24, 32, 40, 48]);
  assert.deepEqual(trendWidths([8, 16], true, 1 / 3), [16]);
  assert.deepEqual(trendWidths([8, 16], false, 0.9), [8]);
});

test('monotone: trials with monotone stage widths against the others', () => {
  const rng = makeRng(4, 'monotone');
  const input = plantedInput(96, (w) => (w[0] <= w[1] && w[1] <= w[2] ? 0.28 : 0.3) + 0.005 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['monotone'] });
  const m = d.outcomes[0];
  assert.ok(m.applied, m.reason);
  const ev = m.evidence as { monotone: number; other: number; meanMonotone: number; meanOther: number };
  assert.ok(ev.monotone + ev.other === 96 && ev.meanMonotone < ev.meanOther, JSON.stringify(ev));
  assert.ok(m.test!.z > 2 && m.test!.adjustedP <= 0.01, JSON.stringify(m.test));
});

test('--rung: refinement judged on the promoted candidates\' errors at a higher rung sees what rung 0\'s noise hides', () => {
  // Rung 0 (all 160) is noise alone; rung 1, for the 40 best at rung 0, carries a planted stage-3 effect.
  const { config, trials: flat } = syntheticCampaign({ n: 160 });
  const rng = makeRng(5, 'rungs');
  const result = (rung: number, valError: number) => ({ rung, epochs: rung + 1, valError, testError: null, trainLoss: null, images: 1 });
  const rung0 = flat.map(() => 0.3 + 0.02 * gaussian(rng));
  const cut = [...rung0].sort((a, b) => a - b)[39];
  const trials = flat.map((t, i) => ({
    ...t, state: 'complete' as const, valError: rung0[i],
    rungResults: [result(0, rung0[i]), ...(rung0[i] <= cut ? [result(1, 0.2 - 0.05 * (t.widths[2] / 64) + 0.002 * gaussian(rng))] : [])],
  }));
  const decide = (rung: number) => {
    const analysis = analyseCampaign({ name: 'rungs', net: config.net, trials, seed: 1 }, { rung });
    return { analysis, r: refineSpace(parent, analysis, { name: 'r20-test.r1', parentRef: 'r20-test.json', campaign: {}, seed: 1, rules: ['ranges'] }) };
  };
  const atZero = decide(0);
  assert.equal(atZero.analysis.obs.length, 160);
  assert.ok(!atZero.r.outcomes[0].applied, atZero.r.outcomes[0].reason);
  const atOne = decide(1);
  assert.equal(atOne.analysis.obs.length, 40);
  assert.equal(atOne.analysis.rung, 1);
  assert.ok(atOne.r.outcomes[0].applied, atOne.r.outcomes[0].reason);
  assert.equal(atOne.r.outcomes[0].test!.candidate, 'ranges:stage3');
  const v = (atOne.r.child.provenance as { validation: { errors: string; method: string; rung: number } }).validation;
  assert.equal(v.rung, 1);
  assert.match(v.errors, /^rung 1 validation error of the 40 candidates promoted to it/);
  assert.match(v.method, /FLOPs-adjusted rung-1 error/);
});

test('--rung on noise: the promoted candidates\' refinement fires near its 10% family-wise rate (200 campaigns)', () => {
  // Neither rung depends on structure; rung 1 continues rung 0's run, so its error shares rung 0's noise in part.
  const { config, trials: flat } = syntheticCampaign({ n: 160 });
  const result = (rung: number, valError: number) => ({ rung, epochs: rung + 1, valError, testError: null, trainLoss: null, images: 1 });
  let fired = 0;
  const sims = 200;
  for (let s = 0; s < sims; s++) {
    const rng = makeRng(s, 'rung-noise');
    const rung0 = flat.map(() => 0.3 + 0.02 * gaussian(rng));
    const cut = [...rung0].sort((a, b) => a - b)[39];
    const trials = flat.map((t, i) => ({
      ...t, state: 'complete' as const, valError: rung0[i],
      rungResults: [result(0, rung0[i]), ...(rung0[i] <= cut ? [result(1, 0.1 + 0.3 * (rung0[i] - 0.3) + 0.005 * gaussian(rng))] : [])],
    }));
    const analysis = analyseCampaign({ name: 'noise', net: config.net, trials, seed: s }, { rung: 1 });
    const r = refineSpace(parent, analysis, { name: 'n.r1', parentRef: 'p.json', campaign: {}, seed: s, permutations: 199, keptSamples: 200 });
    if (r.outcomes.some((o) => o.applied)) fired++;
  }
  console.log(`refinement at rung 1 on noise: fired in ${fired} of ${sims} campaigns`);
  // Binomial sd at 10% over 200 campaigns is 2.1%: 4.5% to 15.5% is within about 2.6 sd, on both sides.
  assert.ok(fired / sims >= 0.045 && fired / sims <= 0.155, `fired in ${fired} of ${sims}`);
});
