/** `search --measure-latency onnxruntime`: every completed trial gets a measured latency, kept in the store, the CSV and the report. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { latencyFit } from '../src/analysis/latency.js';
import type { TrialLike } from '../src/analysis/population.js';
import { cli, tempDir, tinyFlags, trials, writeTinySpace } from './campaign-helpers.js';

test('each completed trial records its batch-1 latency; the report plots latency against FLOPs', () => {
  const dir = tempDir('latency');
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const r = cli(['search', space, '--out', out, '--samples', '4', '--workers', '1', '--no-reference', '--measure-latency', 'onnxruntime', ...tinyFlags(64, 1)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /measuring batch-1 latency of 4 trial\(s\) on onnxruntime/);
  const ts = trials(out);
  assert.equal(ts.length, 4);
  for (const t of ts) assert.ok(t.state === 'complete' && typeof t.latencyMs === 'number' && t.latencyMs > 0, JSON.stringify(t.latencyMs));
  const csv = readFileSync(join(out, 'trials.csv'), 'utf8').split('\n');
  const col = csv[0].split(',').indexOf('latency_ms');
  assert.ok(col >= 0, csv[0]);
  assert.ok(Number(csv[1].split(',')[col]) > 0, csv[1]);
  // Resuming measures nothing again.
  const again = cli(['resume', out]);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr + again.stdout, /measuring batch-1 latency/);
  const report = join(dir, 'report');
  const rep = cli(['report', out, '--out', report]);
  assert.equal(rep.status, 0, rep.stderr);
  const html = readFileSync(join(report, 'report.html'), 'utf8');
  assert.match(html, /Latency against FLOPs/);
  assert.match(html, /latency ≈ [\d.-]+ ms \+ [\d.-]+ ms per MFLOP/);
  const rows = readFileSync(join(report, 'latency.csv'), 'utf8').trim().split('\n');
  assert.equal(rows.length, 5);
});

test('a campaign file asks for the same measurement with launch.measureLatency, and keeps it in campaign.json', () => {
  const dir = tempDir('latency-file');
  writeTinySpace(dir);
  const file = join(dir, 'campaign.json');
  writeFileSync(file, JSON.stringify({
    name: 'timed', space: 'tiny.json', samples: 2, reference: { seeds: 0 },
    train: { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, lr: 0.05, augment: false },
    launch: { backend: 'wasm', workers: 1, measureLatency: 'onnxruntime' },
  }));
  const out = join(dir, 'run');
  const r = cli(['search', '--config', file, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(out, 'campaign.json'), 'utf8')).launch.measureLatency, 'onnxruntime');
  const ts = trials(out);
  assert.equal(ts.length, 2);
  for (const t of ts) assert.ok(typeof t.latencyMs === 'number' && t.latencyMs > 0, JSON.stringify(t.latencyMs));
});

test('the latency fit finds a planted outlier and none on points on a line', () => {
  const trial = (index: number, mflops: number, ms: number): TrialLike => ({
    index, round: 0, widths: [1], complexity: { flops: mflops * 1e6, params: 1, activations: 1 }, state: 'complete', valError: 0.1, testError: 0.1, latencyMs: ms,
  });
  // Small deterministic scatter around 0.2 + 0.05 ms/MFLOP.
  const clean = Array.from({ length: 12 }, (_, i) => trial(i, 2 + i, 0.2 + 0.05 * (2 + i) + 0.002 * Math.sin(7 * i)));
  const fit = latencyFit(clean)!;
  assert.ok(Math.abs(fit.msPerMflop - 0.05) < 0.002 && Math.abs(fit.interceptMs - 0.2) < 0.02, JSON.stringify(fit));
  assert.deepEqual(fit.points.filter((p) => p.outlier), []);
  const planted = latencyFit([...clean, trial(99, 6, 2.0)])!;
  assert.deepEqual(planted.points.filter((p) => p.outlier).map((p) => p.index), [99]);
  assert.equal(latencyFit(clean.slice(0, 2)), null);
});
