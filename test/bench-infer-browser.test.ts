/** bench-infer --browser in headless Chromium: both browser engines time, give the Node engines' logits, stay on loopback; bad input exits 2. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportOnnx, type ExportRecord } from '../src/export/export.js';
import { complexity } from '../src/complexity/count.js';
import { buildNet } from '../src/nets/registry.js';
import { selectBackend } from '../src/training/backends/select.js';
import { selectEngine } from '../src/training/engines/select.js';
import { randomBatch, readSaved } from '../src/training/infer-bench.js';
import { loadTrained, saveNet } from '../src/training/save.js';
import { makeRng } from '../src/util/rng.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent`;
const root = mkdtempSync(join(tmpdir(), 'prunespace-browser-'));
const wide = join(root, 'wide');
const narrow = join(root, 'narrow');
const bare = join(root, 'bare');

function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A saved resnet20 at `keep` of its widths, as `train --save` writes it; BN statistics moved off 0 / 1 so folding them counts. */
async function savedModel(dir: string, keep: number, seed: number): Promise<void> {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 3], classes: 4 });
  const widths = spec.groups.map((g) => Math.max(1, Math.round(keep * g.base)));
  const net = await (await selectEngine('cpu')).engine.build(spec, widths, seed, { momentum: 0, nesterov: false, weightDecay: 0 });
  const rng = makeRng(seed, 'bn');
  const weights = await net.readWeights();
  for (const [name, w] of weights) if (/\/(gamma|moving_variance|beta|moving_mean)$/.test(name)) w.data.forEach((_, i) => (w.data[i] = 0.5 + rng()));
  await net.writeWeights(weights);
  await saveNet(net, dir, {
    net: spec.ref, widths, groups: spec.groups.map((g) => g.name), complexity: complexity(spec, widths),
    metrics: {}, seed, settings: { data: { name: 'synthetic', samples: 32 } }, savedAt: new Date().toISOString(),
  });
  net.dispose();
}

before(async () => {
  await savedModel(wide, 0.5, 1);
  await savedModel(narrow, 0.25, 2);
  await savedModel(bare, 0.25, 3);
  // Both layouts: the browser feeds each export the layout it declares.
  await exportOnnx({ dir: wide, file: join(root, 'wide.onnx'), opset: 17, batch: 'dynamic', layout: 'nhwc' });
  await exportOnnx({ dir: narrow, file: join(root, 'narrow.onnx'), opset: 17, batch: 'dynamic', layout: 'nchw' });
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Node's logits of the batch-1 timing input: onnxruntime-node on the exported file, tfjs on the saved model. */
async function nodeLogits(dir: string): Promise<{ ort: Float32Array; tfjs: Float32Array }> {
  const { spec, metadata } = readSaved(dir);
  const record = (metadata as unknown as { exports: ExportRecord[] }).exports.at(-1)!;
  const [h, w, c] = spec.ref.input;
  const x = randomBatch(spec, 1);
  const pixels = record.layout === 'nhwc' ? x : Float32Array.from({ length: x.length }, (_, j) => x[(j % (h * w)) * c + Math.floor(j / (h * w))]);
  const session = await ort.InferenceSession.create(record.file, { executionProviders: ['cpu'] });
  const dims = record.layout === 'nhwc' ? [1, h, w, c] : [1, c, h, w];
  const onnx = (await session.run({ pixels: new ort.Tensor('float32', pixels, dims) })).logits.data as Float32Array;
  await session.release();
  await selectBackend('cpu');
  const { model } = await loadTrained(dir);
  const { mean, std } = record.normalisation;
  const normalised = Float32Array.from(x, (v, j) => (255 * v - mean[j % c]) / std[j % c]);
  const y = model.predict(tf.tensor4d(normalised, [1, h, w, c])) as tf.Tensor;
  const tfjs = (await y.data()) as Float32Array;
  y.dispose();
  model.dispose();
  return { ort: onnx, tfjs };
}

test('bench-infer --browser times both browser engines, gives the Node logits within 1e-4 and requests only loopback', { skip }, async () => {
  const r = cli(['bench-infer', wide, narrow, '--engine', 'onnxruntime', '--browser', '--repeats', '3', '--min-repeat-ms', '5', '--warmup', '1', '--batch', '4', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { engine: string; dir: string; latencyMs: number; latencySpread: number[]; throughput: number; logits?: number[]; latencySaving: number; browser?: Record<string, unknown> }[];
  assert.deepEqual(rows.map((x) => x.engine), ['onnxruntime', 'onnxruntime', 'onnxruntime-web', 'onnxruntime-web', 'tfjs-wasm-web', 'tfjs-wasm-web']);
  assert.match(r.stderr, /onnxruntime-web 1\.\d+\.\d+ \(wasm execution provider\) in headless Chromium \d+\.[\d.]+, 1 wasm thread \(page cross-origin isolated\)/);
  assert.match(r.stderr, /tfjs 4\.\d+\.\d+ \(wasm backend\) in headless Chromium/);
  for (const row of rows.filter((x) => x.browser)) {
    assert.ok(Number.isFinite(row.latencyMs) && row.latencyMs > 0, `${row.engine} latency ${row.latencyMs}`);
    assert.ok(Number.isFinite(row.throughput) && row.throughput > 0, `${row.engine} throughput ${row.throughput}`);
    assert.ok(row.latencySpread[0] <= row.latencyMs && row.latencyMs <= row.latencySpread[1], `${row.latencySpread}`);
    const b = row.browser!;
    assert.equal(b.crossOriginIsolated, true);
    assert.deepEqual([b.ortThreads, b.tfjsThreads], [1, 1]);
    const requests = b.requests as string[];
    const origin = new URL(requests[0]).origin;
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    // Every request, wasm binaries and models included, went to the loopback server.
    for (const u of requests) assert.ok(u.startsWith(`${origin}/`), `request off loopback: ${u}`);
    for (const f of ['/ort/ort-wasm-simd-threaded.wasm', '/tfjs/tfjs-backend-wasm-simd.wasm', '/model/0/model.onnx', '/model/1/model.onnx', '/model/1/weights.bin']) {
      assert.ok(requests.includes(`${origin}${f}`), `${f} in ${requests.join(', ')}`);
    }
  }
  for (const dir of [wide, narrow]) {
    const expected = await nodeLogits(dir);
    const web = rows.find((x) => x.engine === 'onnxruntime-web' && x.dir === dir)!.logits!;
    const tfjsWeb = rows.find((x) => x.engine === 'tfjs-wasm-web' && x.dir === dir)!.logits!;
    assert.equal(web.length, 4);
    assert.ok(maxDiff(web, expected.ort) <= 1e-4, `${dir}: onnxruntime-web vs onnxruntime-node ${maxDiff(web, expected.ort)}`);
    assert.ok(maxDiff(tfjsWeb, expected.tfjs) <= 1e-4, `${dir}: tfjs wasm in the page vs tfjs in Node ${maxDiff(tfjsWeb, expected.tfjs)}`);
    // The folded normalisation makes the two browser engines agree as well; the logits are not all alike.
    assert.ok(maxDiff(web, tfjsWeb) <= 1e-4, `${dir}: onnxruntime-web vs tfjs ${maxDiff(web, tfjsWeb)}`);
    assert.ok(Math.max(...web) - Math.min(...web) > 1e-4, `logits ${web.join(',')}`);
  }
});

test('bad input: no export, a fixed-batch export, a missing export file, no Chromium where told: one line, exit 2', { skip }, async () => {
  const flags = ['--browser', '--repeats', '1', '--min-repeat-ms', '1', '--warmup', '0', '--batch', '2'];
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[wide, bare], {}, /bare[/\\]prunespace\.json: no ONNX export; run 'prunespace export .*bare --onnx FILE' \(dynamic batch\) before --browser/],
    [[wide], { PRUNESPACE_CHROMIUM: join(root, 'no-such-chromium') }, /--browser: no Chromium at .*no-such-chromium \(PRUNESPACE_CHROMIUM\); set PRUNESPACE_CHROMIUM/],
    [[wide], { PRUNESPACE_CHROMIUM: join(wide, 'prunespace.json') }, /--browser: cannot start Chromium at .*prunespace\.json/],
  ];
  for (const [dirs, env, pattern] of cases) {
    const r = cli(['bench-infer', ...dirs, ...flags], env);
    assert.equal(r.code, 2, `${dirs} ${JSON.stringify(env)}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n').filter((l) => l && !/TensorFlow\.js in Node|^=+$|tfjs-node/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  await exportOnnx({ dir: bare, file: join(root, 'bare.onnx'), opset: 17, batch: 1, layout: 'nhwc' });
  const fixed = cli(['bench-infer', bare, ...flags]);
  assert.equal(fixed.code, 2, fixed.stderr);
  assert.match(fixed.stderr, /bare[/\\]prunespace\.json: only fixed-batch ONNX exports/);
  // The record stays, its file went away.
  await exportOnnx({ dir: bare, file: join(root, 'gone.onnx'), opset: 17, batch: 'dynamic', layout: 'nhwc' });
  rmSync(join(root, 'gone.onnx'));
  const gone = cli(['bench-infer', bare, ...flags]);
  assert.equal(gone.code, 2, gone.stderr);
  assert.match(gone.stderr, /bare[/\\]prunespace\.json: its ONNX export .*gone\.onnx is missing; export again/);
});
