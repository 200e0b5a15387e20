import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyseRatio } from '../src/analysis/buckets.js';
import { escapeHtml } from '../src/analysis/report/escape.js';
import { writeReport } from '../src/analysis/report/write.js';
import type { Observation } from '../src/analysis/population.js';
import { syntheticCampaign } from './analysis-fixtures.js';

test('a campaign with several rounds gets one EDF population per round, with KS against round 0', async () => {
  const r0 = syntheticCampaign({ n: 50, round: 0 });
  const r1 = syntheticCampaign({ n: 50, seed: 8, round: 1, optimumRatio: 150 });
  const trials = [...r0.trials, ...r1.trials.map((t) => ({ ...t, index: t.index + 50 }))];
  const dir = mkdtempSync(join(tmpdir(), 'report-rounds-'));
  const w = await writeReport({ name: 'two-rounds', net: r0.config.net, seed: 1, trials }, dir);
  const pops = readFileSync(join(dir, 'populations.csv'), 'utf8').trim().split('\n');
  assert.equal(pops.length, 3);
  assert.match(pops[1], /^two-rounds round 0,/);
  assert.match(pops[2], /^two-rounds round 1,/);
  assert.equal(w.analysis.obs.length, trials.filter((t) => t.state === 'complete').length);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  assert.equal(summary.populations.length, 2);
  assert.ok(summary.populations[1].ks > 0);
});

test('a campaign with no completed trial still gets a report that says so', async () => {
  const { config, trials } = syntheticCampaign({ n: 3 });
  const pending = trials.map((t) => ({ ...t, state: 'waiting' as const, valError: null, testError: null, curves: [] }));
  const dir = mkdtempSync(join(tmpdir(), 'report-empty-'));
  const w = await writeReport({ name: 'empty', net: config.net, seed: 1, trials: pending }, dir);
  assert.deepEqual(w.missing.map((m) => m.plot).sort(), ['bucket-edf', 'curves', 'edf', 'metric-bins', 'pareto', 'profile', 'ratio']);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.match(html, /No completed trials yet/);
  assert.match(html, /3 pending or running/);
});

test('trials with one parameter count give no optimum and say why', () => {
  const obs = Array.from({ length: 40 }, (_, i) => ({ index: i, round: 0, error: 0.1 + (i % 5) / 100, testError: null, widths: [], flops: 1e6, params: 1e4, activations: 1, ratio: 100 }) as Observation);
  const a = analyseRatio(obs);
  assert.equal(a.optimum, null);
  assert.ok(a.reasons.some((r) => /narrow range|bucket/.test(r)), a.reasons.join('; '));
});

test('escapeHtml escapes markup and quotes', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});
