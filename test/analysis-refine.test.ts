import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyseCampaign } from '../src/analysis/analyse.js';
import { binomialTail, refineSpace } from '../src/analysis/refine.js';
import { generation } from '../src/analysis/refine-campaign.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace, parseSpace, writeSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { r20Space, syntheticCampaign } from './analysis-fixtures.js';

const parent = parseSpace(r20Space, 'spaces/r20-test.json');

test('refinement around a planted optimum: ratio window covers it, child is a sampleable subset of the parent', () => {
  const { config, trials } = syntheticCampaign({ n: 160, optimumRatio: 110 });
  const analysis = analyseCampaign({ name: 'syn', net: config.net, trials, seed: 1 });
  const r = refineSpace(parent, analysis, { name: 'r20-test.r1', parentRef: 'r20-test.json', campaign: { dir: 'runs/syn' }, seed: 1, date: '2026-01-01' });
  const ratio = r.outcomes.find((o) => o.rule === 'ratio')!;
  assert.ok(ratio.applied, ratio.reason);
  const window = r.child.regime.flopsPerParam!;
  assert.ok(window.min! < analysis.ratio.optimum!.ratio && window.max! > analysis.ratio.optimum!.ratio);
  // The params rule defers to an applied ratio window; every outcome carries a reason.
  assert.equal(r.outcomes.find((o) => o.rule === 'params')!.applied, false);
  for (const o of r.outcomes) assert.ok(o.reason.length > 10, o.rule);
  assert.equal(r.child.parent, 'r20-test.json');
  assert.equal((r.child.provenance as { rules: unknown[] }).rules.length, 4);
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

test('the params rule alone bounds parameters around the best bucket', () => {
  const { config, trials } = syntheticCampaign({ n: 160, optimumRatio: 110 });
  const analysis = analyseCampaign({ name: 'syn', net: config.net, trials, seed: 1 });
  const r = refineSpace(parent, analysis, { name: 'p.r1', parentRef: 'p.json', campaign: {}, seed: 1, rules: ['params'] });
  const outcome = r.outcomes[0];
  assert.ok(outcome.applied, outcome.reason);
  const window = r.child.regime.params!;
  assert.equal(window.unit, 'absolute');
  const best = analysis.ratio.buckets[analysis.ratio.bucketOptimum!.bucket];
  assert.ok(window.min! <= best.paramsLo && window.max! >= best.paramsHi);
});

test('refined space names count generations', () => {
  assert.equal(generation('resnet20-fmnist'), 0);
  assert.equal(generation('run.r2'), 2);
});

test('binomial tail: exact small cases', () => {
  assert.ok(Math.abs(binomialTail(5, 4, 0.79) - (5 * 0.79 ** 4 * 0.21 + 0.79 ** 5)) < 1e-12);
  assert.ok(Math.abs(binomialTail(5, 0, 0.3) - 1) < 1e-12);
  assert.ok(Math.abs(binomialTail(10, 10, 0.5) - 1 / 1024) < 1e-12);
});
