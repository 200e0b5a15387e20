/** Latency regimes: the per-layer table's error on held-out configurations, its cache, sampling inside the window, bad input. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildLatencyModel, type LatencyModel } from '../src/export/latency-table.js';
import { openCampaign } from '../src/campaign/store.js';
import { compileSpace } from '../src/space/compile.js';
import { parseSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { keptShare } from '../src/analysis/refine.js';
import type { SpaceFileInput } from '../src/space/schema.js';
import { UserError } from '../src/util/errors.js';
import { cli, ROOT, tempDir, tinyFlags, trials } from './campaign-helpers.js';

/** resnet20 on 16x16: small enough to time in seconds, large enough that layers, not the run overhead, set its latency. */
const SPACE: SpaceFileInput = {
  name: 'tiny-latency',
  network: { family: 'resnet20', input: '16x16x1', classes: 3 },
  samplers: [{ select: { kinds: ['stage', 'inner'] }, keep: { min: 0.2, max: 0.8 }, quantum: 1 }],
  regime: { latency: { ms: { max: 1000 }, target: 'onnxruntime-cpu', batch: 1 } },
};
const dir = tempDir('latency-regime');
const table = join(dir, 'table.json');
const BUILD = { file: table, grid: 3, fitConfigs: 6, holdout: 6 };
let model: LatencyModel;

function writeSpaceFile(name: string, space: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(space, null, 2));
  return path;
}

test('the table predicts measured end-to-end latency of held-out configurations', async (t) => {
  model = await buildLatencyModel(parseSpace(SPACE, 'tiny-latency.json'), BUILD);
  const { holdout } = model.fit;
  t.diagnostic(`held-out median relative error ${(100 * holdout.medianRelError).toFixed(1)}%, max ${(100 * holdout.maxRelError).toFixed(1)}%`);
  assert.ok(model.timed.layers > 20, JSON.stringify(model.timed));
  assert.equal(model.timed.endToEnd, 12);
  assert.equal(holdout.n, 6);
  for (const p of holdout.points) assert.ok(p.measuredMs > 0 && p.predictedMs > 0, JSON.stringify(p));
  // Loose: the test machine is shared and loaded; README states the figure measured on resnet20.
  assert.ok(holdout.medianRelError < 0.4, `median held-out relative error ${holdout.medianRelError}`);
  assert.ok(model.fit.scale > 0);
  const stored = JSON.parse(readFileSync(table, 'utf8'));
  assert.equal(stored.tables.length, 1);
  assert.equal(stored.tables[0].key.target, 'onnxruntime-cpu');
  assert.equal(stored.tables[0].fits[0].holdout.medianRelError, holdout.medianRelError);
});

test('a second build reads everything from the table file and times nothing', async () => {
  const again = await buildLatencyModel(parseSpace(SPACE, 'tiny-latency.json'), BUILD);
  assert.deepEqual(again.timed, { layers: 0, endToEnd: 0 });
  assert.equal(again.fit.scale, model.fit.scale);
  const w = model.fit.holdout.points[0].widths;
  assert.equal(again.predict(w), model.predict(w));
  // Without grid or fit options (sample, search), the network's fit on any grid is used: nothing timed either.
  const byDefault = await buildLatencyModel(parseSpace({ ...SPACE, name: 'other' }, 'other.json'), { file: table });
  assert.deepEqual(byDefault.timed, { layers: 0, endToEnd: 0 });
  assert.equal(byDefault.predict(w), model.predict(w));
});

test('the sampler accepts only configurations whose predicted latency lies in the window', () => {
  const loose = compileSpace(parseSpace(SPACE, 'x.json'), { predictLatency: model.predict });
  const predicted = sampleSpace(loose, 200, 3).configs.map((c) => c.predictedLatencyMs!).sort((a, b) => a - b);
  const [min, max] = [predicted[50], predicted[150]];
  const windowed = { ...SPACE, regime: { latency: { ms: { min, max }, target: 'onnxruntime-cpu' as const } } };
  const space = compileSpace(parseSpace(windowed, 'w.json'), { predictLatency: model.predict });
  const r = sampleSpace(space, 40, 7);
  assert.equal(r.configs.length, 40);
  assert.ok(r.acceptanceRate > 0.2 && r.acceptanceRate < 0.8, String(r.acceptanceRate));
  for (const c of r.configs) {
    assert.equal(c.predictedLatencyMs, model.predict(c.widths));
    assert.ok(c.predictedLatencyMs! >= min && c.predictedLatencyMs! <= max, `${c.predictedLatencyMs} outside ${min}..${max}`);
  }
  // Both windows: FLOPs too (a FLOPs maximum at the loose sample's median FLOPs, the latency maximum as above).
  const flops = sampleSpace(loose, 200, 3).configs.map((c) => c.complexity.flops).sort((a, b) => a - b)[100];
  const bothRegime = { flops: { max: flops, unit: 'absolute' as const }, latency: { ms: { max }, target: 'onnxruntime-cpu' as const } };
  const both = compileSpace(parseSpace({ ...SPACE, regime: bothRegime }, 'b.json'), { predictLatency: model.predict });
  const inBoth = sampleSpace(both, 20, 7);
  assert.equal(inBoth.configs.length, 20);
  for (const c of inBoth.configs) assert.ok(c.complexity.flops <= flops && c.predictedLatencyMs! <= max);
  // Without a predictor the window cannot be checked, and the sampler says so instead of ignoring it.
  assert.throws(() => sampleSpace(compileSpace(parseSpace(windowed, 'w.json')), 5, 1), (e: unknown) => e instanceof UserError && /w\.json: regime\.latency needs a latency predictor/.test(e.message));
});

test('sample, search and a refined round sample against the cached table; every trial is measured; refine keeps the latency regime', () => {
  const lowPredicted = model.fit.holdout.points.map((p) => p.predictedMs).sort((a, b) => a - b);
  const max = lowPredicted[lowPredicted.length - 2];
  const path = writeSpaceFile('windowed.json', { ...SPACE, regime: { latency: { ms: { max }, target: 'onnxruntime-cpu', batch: 1 } } });
  const s = cli(['sample', path, '-n', '5', '--latency-table', table, '--json', '--seed', '2']);
  assert.equal(s.status, 0, s.stderr);
  const out = JSON.parse(s.stdout);
  assert.equal(out.configs.length, 5);
  for (const c of out.configs) assert.ok(c.predictedLatencyMs <= max, JSON.stringify(c));
  assert.doesNotMatch(s.stderr, /timing \d+ layer/);

  const run = join(dir, 'run');
  const r = cli(['search', path, '--out', run, '--samples', '3', '--workers', '1', '--reference-seeds', '1', '--latency-table', table, ...tinyFlags(64, 1)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /sampling against the latency table .*held-out error on 6 configuration/);
  assert.doesNotMatch(r.stderr, /timing \d+ layer|measuring 12 configuration/);
  const ts = trials(run);
  assert.equal(ts.length, 4, `3 candidates and the uniform reference; stderr: ${r.stderr}`);
  const reader = openCampaign(run, { readonly: true });
  const config = reader.config();
  reader.close();
  assert.equal(config.measureLatency, 'onnxruntime');
  assert.deepEqual(config.latencyModel?.holdout, { n: 6, medianRelError: model.fit.holdout.medianRelError, maxRelError: model.fit.holdout.maxRelError });
  assert.equal(config.latencyModel?.table, table);
  for (const t of ts) assert.ok(t.state === 'complete' && typeof t.latencyMs === 'number' && t.latencyMs > 0, JSON.stringify(t));
  const samples = ts.filter((t) => t.role !== 'reference');
  for (const t of samples) assert.ok(model.predict(t.widths) <= max);
  const reference = ts.find((t) => t.role === 'reference')!;
  assert.ok(model.predict(reference.widths) <= max);
  // Every trial keeps the latency it was sampled with, the reference's too.
  for (const t of ts) assert.equal(t.predictedLatencyMs, model.predict(t.widths), JSON.stringify(t));

  // status and report show the predictor and how it matched the measured latency of the candidates.
  const st = cli(['status', run]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`latency regime: onnxruntime-cpu, batch 1, predicted 0–${max} ms`));
  assert.match(st.stdout, /predictor: table \S*table\.json \(machine key: target onnxruntime-cpu, cpu .*, cores \d+, onnxruntime [\d.]+/);
  assert.match(st.stdout, /latency ≈ [\d.]+ x table sum \(scale fitted on 6 configuration\(s\)\); held-out error on 6 configuration\(s\): median [\d.]+%, max [\d.]+%/);
  assert.match(st.stdout, /predicted against measured on 3 candidate\(s\): median \|error\| [\d.]+%, max [\d.]+%/);
  assert.match(st.stdout, /outliers \(relative error beyond 3 scaled MADs\): /);
  const json = JSON.parse(cli(['status', run, '--json']).stdout).latencyPredictor;
  assert.equal(json.predictor.table, table);
  assert.equal(json.accuracy.points.length, 3);
  for (const p of json.accuracy.points) {
    const t = samples.find((x) => x.index === p.index)!;
    assert.equal(p.predictedMs, model.predict(t.widths));
    assert.equal(p.measuredMs, t.latencyMs);
  }
  const expectedMedian = [...json.accuracy.points.map((p: { relError: number }) => Math.abs(p.relError))].sort((a, b) => a - b)[1];
  assert.equal(json.accuracy.medianAbsRelError, expectedMedian);
  const reportDir = join(dir, 'report');
  const rep = cli(['report', run, '--out', reportDir]);
  assert.equal(rep.status, 0, rep.stderr);
  const html = readFileSync(join(reportDir, 'report.html'), 'utf8');
  assert.match(html, /Latency predictor/);
  assert.match(html, /predicted against measured on 3 candidate\(s\)/);
  assert.equal(JSON.parse(readFileSync(join(reportDir, 'summary.json'), 'utf8')).latencyPredictor.accuracy.points.length, 3);

  // A refined round samples the child against the same table, read back from the file the campaign recorded.
  const more = cli(['resume', run, '--rounds', '2', '--round-samples', '2']);
  assert.equal(more.status, 0, more.stderr);
  assert.doesNotMatch(more.stderr, /timing \d+ layer|measuring 12 configuration/);
  const round1 = trials(run).filter((t) => t.round === 1);
  assert.equal(round1.length, 2);
  for (const t of round1) assert.ok(model.predict(t.widths) <= max && typeof t.latencyMs === 'number', JSON.stringify(t));

  const child = join(dir, 'child.json');
  const ref = cli(['refine', run, '--out', child]);
  assert.equal(ref.status, 0, ref.stderr);
  assert.match(ref.stdout, /the child keeps [\d.]+% of the parent space \(estimated from \d+ parent samples inside its latency window\)/);
  assert.doesNotMatch(ref.stderr, /timing \d+ layer/);
  assert.deepEqual(JSON.parse(readFileSync(child, 'utf8')).regime.latency, { ms: { max }, target: 'onnxruntime-cpu', batch: 1 });
});

test("refine's kept share is of the parent inside its latency window, with the predictor the sampler uses", () => {
  // A child narrowed to the wide end of the widths keeps little of a parent whose window holds the narrow, fast end.
  const wideAt = 0.5;
  const predictLatency = (w: number[]) => w.reduce((a, b) => a + b, 0);
  const loose = compileSpace(parseSpace(SPACE, 'p.json'), { predictLatency });
  const sums = sampleSpace(loose, 400, 5).configs.map((c) => predictLatency(c.widths)).sort((a, b) => a - b);
  const max = sums[200];
  const windowed = { ...SPACE, regime: { latency: { ms: { max }, target: 'onnxruntime-cpu' as const } } };
  // Only the three stage groups narrow, so the window-blind share stays well above 0 ((0.3/0.6)^3 of the parent).
  const narrowed = {
    ...windowed,
    samplers: [
      { select: { kinds: ['stage' as const] }, keep: { min: wideAt, max: 0.8 }, quantum: 1 },
      { select: { kinds: ['inner' as const] }, keep: { min: 0.2, max: 0.8 }, quantum: 1 },
    ],
  };
  const parent = compileSpace(parseSpace(windowed, 'p.json'), { predictLatency });
  const child = compileSpace(parseSpace(narrowed, 'c.json'), { predictLatency });
  const kept = keptShare(parent, child, 500, 3);
  // The same estimate by hand: the sampler's windowed parent samples that the child's ranges and window admit.
  const drawn = sampleSpace(parent, 500, 3).configs;
  assert.equal(kept.samples, drawn.length);
  const byHand = drawn.filter((c) => child.contains(c.widths) && predictLatency(c.widths) <= max).length / drawn.length;
  assert.equal(kept.share, byHand);
  // Ignoring the window (no predictor) counts the wide configurations the parent's candidates never include.
  const blind = keptShare(compileSpace(parseSpace(windowed, 'p.json')), compileSpace(parseSpace(narrowed, 'c.json')), 500, 3);
  assert.ok(blind.share > kept.share + 0.02, `without the window ${blind.share}, with it ${kept.share}`);
});

test('bad latency regimes and an unloadable onnxruntime-node: one line naming the field or file, exit 2, nothing written', () => {
  const fresh = join(dir, 'never.json');
  const r0 = cli(['latency-table', writeSpaceFile('bad.json', { ...SPACE, regime: { latency: { ms: { min: 2, max: 1 }, target: 'onnxruntime-cpu' } } }), '--out', fresh]);
  assert.equal(r0.status, 2, r0.stderr);
  assert.match(r0.stderr, /^prunespace: \S*bad\.json: regime\.latency\.ms: min must not exceed max\n$/);
  const cases: [unknown, RegExp][] = [
    [{ latency: { ms: { max: 1 }, target: 'tensorrt' } }, /^b\.json: regime\.latency\.target: /],
    [{ latency: { ms: { max: 1 }, target: 'onnxruntime-cpu', batch: 8 } }, /^b\.json: regime\.latency\.batch: /],
    [{ latency: { ms: {}, target: 'onnxruntime-cpu' } }, /^b\.json: regime\.latency\.ms: give min, max or both/],
    [{}, /^b\.json: regime\.flops: give a flops window, a latency window, or both/],
  ];
  for (const [regime, message] of cases) {
    assert.throws(() => parseSpace({ ...SPACE, regime }, 'b.json'), (e: unknown) => e instanceof UserError && message.test(e.message), JSON.stringify(regime));
  }
  const noRegime = cli(['latency-table', writeSpaceFile('flops.json', { ...SPACE, regime: { flops: { max: 0.5 } } }), '--out', fresh]);
  assert.equal(noRegime.status, 2);
  assert.match(noRegime.stderr, /flops\.json: regime\.latency is not given/);
  const ok = writeSpaceFile('ok.json', SPACE);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/latency-no-ort-fixture.ts'), ok, fresh], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /ok\.json: regime\.latency needs onnxruntime-node, which cannot be loaded \(Cannot find package 'onnxruntime-node'\)/);
  assert.equal(existsSync(fresh), false);
});
