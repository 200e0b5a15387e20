import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyseCampaign } from '../src/analysis/analyse.js';
import { best, defaultTopK } from '../src/analysis/population.js';
import { widthProfile } from '../src/analysis/profiles.js';
import { decideRules, directionConsistent, refineSpace, splitHalves } from '../src/analysis/refine.js';
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
  assert.ok(window.min! < analysis.ratio.optimum!.ratio && window.max! > analysis.ratio.optimum!.ratio);
  // Every outcome carries a reason; the applied ratio rule was confirmed on trials it did not see.
  for (const o of r.outcomes) assert.ok(o.reason.length > 10, o.rule);
  assert.ok(ratio.confirmation!.confirmed && ratio.confirmation!.adjustedP <= 0.1, JSON.stringify(ratio.confirmation));
  assert.equal(r.child.parent, 'r20-test.json');
  const prov = r.child.provenance as { rules: unknown[]; validation: { selection: number; confirmation: number; selectionTrials: number[] } };
  assert.equal(prov.rules.length, 3);
  assert.equal(prov.validation.selection + prov.validation.confirmation, analysis.obs.length);
  assert.equal(prov.validation.selectionTrials.length, prov.validation.selection);
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

test('a rule proposed on the selection half but not borne out on the held-out half is not applied', () => {
  // Plant the optimum only in the trials that choose the rules; the held-out half is noise.
  const { config, trials } = syntheticCampaign({ n: 160, optimumRatio: 110 });
  const analysis = analyseCampaign({ name: 'syn', net: config.net, trials, seed: 1 });
  const held = new Set(splitHalves(analysis.obs, 1).confirmation.map((o) => o.index));
  const rng = makeRng(1, 'scramble');
  const heldErrors = analysis.obs.filter((o) => held.has(o.index)).map((o) => o.error).sort(() => rng() - 0.5);
  let k = 0;
  const scrambled = { ...analysis, obs: analysis.obs.map((o) => (held.has(o.index) ? { ...o, error: heldErrors[k++] } : o)) };
  const r = refineSpace(parent, scrambled, { name: 'x.r1', parentRef: 'p.json', campaign: {}, seed: 1, rules: ['ratio'] });
  const ratio = r.outcomes[0];
  assert.equal(ratio.proposed, true);
  assert.equal(ratio.applied, false, ratio.reason);
  assert.match(ratio.reason, /not confirmed on the held-out half/);
  assert.equal(r.child.regime.flopsPerParam, undefined);
});

test('refined space names count generations', () => {
  assert.equal(generation('resnet20-fmnist'), 0);
  assert.equal(generation('run.r2'), 2);
});

/** Round-0 observations of sampled r20 configurations with errors from `errorOf`. */
function plantedInput(n: number, errorOf: (widths: number[], i: number) => number) {
  const compiled = compileSpace(parent);
  const obs = sampleSpace(compiled, n, 11).configs.map((c, i) => ({
    index: i, round: 0, error: errorOf(c.widths, i), testError: null, widths: c.widths,
    flops: c.complexity.flops, params: c.complexity.params, activations: c.complexity.activations, ratio: c.complexity.flops / c.complexity.params,
  }));
  return { obs, spec: compiled.net, originalRatio: 114.4, profile: widthProfile(obs, best(obs, defaultTopK(n)), compiled.net.groups) };
}

test('ranges: every group is tested with Holm-adjusted p-values, and the kept range lies on the side rho favours', () => {
  const rng = makeRng(2, 'ranges');
  // Wider stage 3 is better; nothing else matters.
  const input = plantedInput(160, (w) => 0.3 - 0.05 * (w[2] / 64) + 0.004 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['ranges'] });
  const ranges = d.outcomes[0];
  assert.ok(ranges.applied, ranges.reason);
  const groups = (ranges.evidence as { groups: Record<string, { spearman: number; pValue: number; holmP: number; childWidths?: number[]; parentWidths?: number[] }> }).groups;
  assert.equal(Object.keys(groups).length, 12);
  for (const g of Object.values(groups)) assert.ok(g.holmP >= g.pValue);
  const s3 = groups.stage3;
  assert.ok(s3.spearman < 0 && s3.childWidths![0] > s3.parentWidths![0] && s3.childWidths![1] === s3.parentWidths![1], JSON.stringify(s3));
});

test('ranges: a kept range must lie on the side the correlation favours', () => {
  const parentWidths = [16, 24, 32, 40, 48, 56, 64];
  // Error falls with width (rho < 0): keeping the wide end is consistent, keeping the narrow end is not.
  assert.equal(directionConsistent(-0.4, parentWidths, [40, 48, 56, 64]), true);
  assert.equal(directionConsistent(-0.4, parentWidths, [16, 24, 32]), false);
  assert.equal(directionConsistent(-0.4, parentWidths, [16, 24, 32, 40, 48, 56]), false);
  // Error rises with width: the narrow end.
  assert.equal(directionConsistent(0.4, parentWidths, [16, 24, 32]), true);
  assert.equal(directionConsistent(0.4, parentWidths, [48, 56, 64]), false);
});

test('monotone: trials with monotone stage widths against the others, a test that can reach its level', () => {
  const rng = makeRng(4, 'monotone');
  const input = plantedInput(96, (w) => (w[0] <= w[1] && w[1] <= w[2] ? 0.28 : 0.3) + 0.005 * gaussian(rng));
  const d = decideRules(parent, input, { seed: 1, rules: ['monotone'] });
  const m = d.outcomes[0];
  assert.ok(m.applied, m.reason);
  const ev = m.evidence as { minP: number; pValue: number; monotone: number; other: number };
  assert.ok(ev.minP < 0.01 && ev.pValue <= 0.1 && ev.monotone + ev.other === 48, JSON.stringify(ev));
});
