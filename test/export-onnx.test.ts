/** ONNX export: every family's exported graph, run in ONNX Runtime, gives the tfjs and torch engines' logits; bad input writes nothing. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import protos, { type onnx as O } from 'onnx-proto';

const { onnx } = protos;
import { complexity } from '../src/complexity/count.js';
import { exportOnnx } from '../src/export/export.js';
import { checkOnnx } from '../src/export/onnx.js';
import { buildNet } from '../src/nets/registry.js';
import type { NetRef, WidthConfig } from '../src/nets/types.js';
import { normaliser } from '../src/training/data/batch.js';
import { loadData } from '../src/training/data/load.js';
import type { Engine, WeightSet } from '../src/training/engine.js';
import { selectEngine } from '../src/training/engines/select.js';
import { saveNet } from '../src/training/save.js';
import type { DataSettings } from '../src/training/types.js';
import { makeRng } from '../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'prunespace-onnx-'));
let tfjs: Engine;
let torch: Engine;

before(async () => {
  tfjs = (await selectEngine('cpu')).engine;
  torch = (await selectEngine('torch')).engine;
});

/** Non-uniform widths: each group keeps its own random share (5-25%) of its channels. */
function prunedWidths(bases: number[], seed: number): WidthConfig {
  const rng = makeRng(seed, 'widths');
  return bases.map((b) => Math.max(1, Math.round(b * (0.05 + 0.2 * rng()))));
}

/** BN statistics and affine parameters away from their initial 0 / 1, so folding them is tested. */
function perturbBn(weights: WeightSet, seed: number): WeightSet {
  const rng = makeRng(seed, 'bn');
  const out: WeightSet = new Map();
  for (const [name, w] of weights) {
    const data = w.data.slice();
    if (/\/(gamma|moving_variance)$/.test(name)) for (let i = 0; i < data.length; i++) data[i] = 0.5 + rng();
    else if (/\/(beta|moving_mean|bias)$/.test(name)) for (let i = 0; i < data.length; i++) data[i] = 0.2 * (rng() - 0.5);
    out.set(name, { shape: w.shape, data });
  }
  return out;
}

/** Saves a model of the family at pruned widths, trained-like weights, the data settings it "trained" on. */
async function savedModel(name: string, ref: NetRef, data: DataSettings, seed: number, given?: WidthConfig): Promise<{ dir: string; widths: WidthConfig }> {
  const spec = buildNet(ref);
  const widths = given ?? prunedWidths(spec.groups.map((g) => g.base), seed);
  const net = await tfjs.build(spec, widths, seed, { momentum: 0, nesterov: false, weightDecay: 0 });
  await net.writeWeights(perturbBn(await net.readWeights(), seed));
  const dir = join(root, name);
  await saveNet(net, dir, {
    net: spec.ref, widths, groups: spec.groups.map((g) => g.name), complexity: complexity(spec, widths),
    metrics: {}, seed, settings: { data }, savedAt: new Date().toISOString(),
  });
  net.dispose();
  return { dir, widths };
}

/** Raw uint8 images of the data's test split: the first n. */
function images(data: DataSettings, ref: NetRef, n: number): { raw: Uint8Array; normalised: Float32Array } {
  const spec = buildNet(ref);
  const prepared = loadData(data, { shape: spec.ref.input, classes: spec.ref.classes });
  const px = spec.ref.input.reduce((a, b) => a * b, 1);
  const c = spec.ref.input[2];
  const raw = new Uint8Array(n * px);
  for (let i = 0; i < n; i++) {
    const idx = prepared.test.indices[i];
    raw.set(prepared.test.source.images.subarray(idx * px, (idx + 1) * px), i * px);
  }
  const lut = normaliser(prepared);
  const normalised = Float32Array.from(raw, (v, j) => lut[(j % c) * 256 + v]);
  return { raw, normalised };
}

async function engineLogits(engine: Engine, dir: string, ref: NetRef, widths: WidthConfig, x: Float32Array, n: number): Promise<Float32Array> {
  const spec = buildNet(ref);
  const { loadTrained } = await import('../src/training/save.js');
  const { readLayersWeights } = await import('../src/training/engines/layers-weights.js');
  const { model } = await loadTrained(dir);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  const net = await engine.build(spec, widths, 0, { momentum: 0, nesterov: false, weightDecay: 0 });
  await net.writeWeights(weights);
  const { logits } = await net.forward({ x, size: n }, { training: false });
  net.dispose();
  return logits;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

const FASHION: DataSettings = { name: 'fashion-mnist' };
const SYNTH: DataSettings = { name: 'synthetic', samples: 64 };
const CASES: { name: string; ref: NetRef; data: DataSettings; widths?: WidthConfig }[] = [
  // Stages narrowing (12 > 6 > 3): the zero-pad shortcuts subsample and drop channels.
  { name: 'resnet20-narrowing', ref: { family: 'resnet20', input: [28, 28, 1], classes: 10 }, data: FASHION, widths: [12, 6, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6] },
  { name: 'resnet20-zeropad', ref: { family: 'resnet20', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'resnet20-projection', ref: { family: 'resnet20', input: [28, 28, 1], classes: 10, shortcut: 'projection' }, data: FASHION },
  { name: 'vgg16', ref: { family: 'vgg16', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'vgg-small', ref: { family: 'vgg-small', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'mobilenet-v1-cifar', ref: { family: 'mobilenet-v1-cifar', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'mobilenet-v2-cifar', ref: { family: 'mobilenet-v2-cifar', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'resnet50', ref: { family: 'resnet50', input: [28, 28, 1], classes: 10 }, data: FASHION },
  { name: 'resnet20-rgb', ref: { family: 'resnet20', input: [32, 32, 3], classes: 10 }, data: SYNTH },
  { name: 'vgg-small-rgb', ref: { family: 'vgg-small', input: [32, 32, 3], classes: 10 }, data: SYNTH },
  { name: 'mobilenet-v2-cifar-rgb', ref: { family: 'mobilenet-v2-cifar', input: [32, 32, 3], classes: 10 }, data: SYNTH },
  { name: 'mobilenet-v1-rgb', ref: { family: 'mobilenet-v1', input: [64, 64, 3], classes: 10 }, data: SYNTH },
];

for (const [i, c] of CASES.entries()) {
  test(`${c.name}: ONNX Runtime logits equal the tfjs and torch engines' within 1e-4 (pruned widths)`, async () => {
    const { dir, widths } = await savedModel(c.name, c.ref, c.data, 11 + i, c.widths);
    const n = 4;
    const { raw, normalised } = images(c.data, c.ref, n);
    const [h, w, ch] = buildNet(c.ref).ref.input;
    const expectTfjs = await engineLogits(tfjs, dir, c.ref, widths, normalised, n);
    const expectTorch = await engineLogits(torch, dir, c.ref, widths, normalised, n);
    const scale = Math.max(1, ...Array.from(expectTfjs, Math.abs));
    for (const layout of ['nhwc', 'nchw'] as const) {
      const file = join(root, `${c.name}.${layout}.onnx`);
      await exportOnnx({ dir, file, opset: 17, batch: 'dynamic', layout });
      assert.deepEqual(checkOnnx(readFileSync(file)), [], 'well formed');
      const pixels = Float32Array.from(raw, (v) => v / 255);
      let input = pixels;
      if (layout === 'nchw') {
        input = new Float32Array(pixels.length);
        for (let b = 0; b < n; b++)
          for (let y = 0; y < h; y++)
            for (let x = 0; x < w; x++)
              for (let k = 0; k < ch; k++) input[((b * ch + k) * h + y) * w + x] = pixels[((b * h + y) * w + x) * ch + k];
      }
      const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
      const dims = layout === 'nhwc' ? [n, h, w, ch] : [n, ch, h, w];
      const result = await session.run({ pixels: new ort.Tensor('float32', input, dims) });
      const logits = result.logits.data as Float32Array;
      assert.deepEqual(result.logits.dims, [n, 10]);
      await session.release();
      assert.ok(maxDiff(logits, expectTfjs) <= 1e-4 * scale, `${layout}: vs tfjs ${maxDiff(logits, expectTfjs)}`);
      assert.ok(maxDiff(logits, expectTorch) <= 1e-4 * scale, `${layout}: vs torch ${maxDiff(logits, expectTorch)}`);
    }
    // The logits are not trivially equal: images differ, so rows differ.
    assert.ok(maxDiff(expectTfjs.subarray(0, 10), expectTfjs.subarray(10, 20)) > 1e-3, `rows ${expectTfjs.slice(0, 20).join(',')}`);
    const meta = JSON.parse(readFileSync(join(dir, 'prunespace.json'), 'utf8'));
    assert.equal(meta.exports.length, 2);
    assert.deepEqual([meta.exports[0].layout, meta.exports[1].layout, meta.exports[0].opset], ['nhwc', 'nchw', 17]);
    assert.ok(meta.exports[0].versions['onnx-proto'], 'versions recorded');
    assert.equal(meta.exports[0].normalisation.mean.length, ch);
  });
}

test('the file declares its opset, a fixed batch when asked, and initialisers of the shapes they claim', async () => {
  const ref: NetRef = { family: 'resnet20', input: [8, 8, 1], classes: 3 };
  const { dir } = await savedModel('fixed', ref, { name: 'synthetic', samples: 32 }, 5);
  const file = join(root, 'fixed.onnx');
  await exportOnnx({ dir, file, opset: 13, batch: 2, layout: 'nhwc' });
  const m = onnx.ModelProto.decode(readFileSync(file));
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 13]]);
  const graph = m.graph as O.GraphProto;
  assert.equal(Number(graph.input[0].type!.tensorType!.shape!.dim![0].dimValue), 2);
  // A corrupted initialiser and a dangling input are caught.
  graph.initializer[0].rawData = new Uint8Array(3);
  graph.node[1].input = ['nowhere'];
  const problems = checkOnnx(onnx.ModelProto.encode(m).finish());
  assert.ok(problems.some((p) => /initialiser .*3 bytes/.test(p)), problems.join('; '));
  assert.ok(problems.some((p) => /reads nowhere/.test(p)), problems.join('; '));
  const session = await ort.InferenceSession.create(file);
  const out = await session.run({ pixels: new ort.Tensor('float32', new Float32Array(2 * 64), [2, 8, 8, 1]) });
  assert.deepEqual(out.logits.dims, [2, 3]);
});

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bad input: not a model directory, unsupported opset, bad --batch: one line, exit 2, nothing written', async () => {
  const ref: NetRef = { family: 'resnet20', input: [8, 8, 1], classes: 3 };
  const { dir } = await savedModel('bad', ref, { name: 'synthetic', samples: 32 }, 6);
  const before = readFileSync(join(dir, 'prunespace.json'), 'utf8');
  const notModel = join(root, 'empty');
  mkdirSync(notModel);
  writeFileSync(join(notModel, 'notes.txt'), 'x');
  const file = join(root, 'never.onnx');
  const cases: [string[], RegExp][] = [
    [[notModel, '--onnx', file], /not a prunespace model directory/],
    [[dir, '--onnx', file, '--opset', '9'], /--opset 9 is not supported \(supported: 13\.\.21\)/],
    [[dir, '--onnx', file, '--batch', 'big'], /--batch expects 'dynamic' or a positive integer, got 'big'/],
    [[dir, '--onnx', file, '--batch', '0'], /--batch expects/],
    [[dir], /export needs --onnx FILE/],
  ];
  for (const [args, message] of cases) {
    const r = cli(['export', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(file), 'nothing written');
  }
  assert.equal(readFileSync(join(dir, 'prunespace.json'), 'utf8'), before);
  const ok = cli(['export', dir, '--onnx', file, '--nchw', '--batch', '1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /input pixels NCHW in \[0, 1\], batch 1/);
  assert.ok(existsSync(file), 'written');
});

test('bench-infer times saved models on onnxruntime beside tfjs and torch, savings against the first model per engine', async () => {
  const ref: NetRef = { family: 'resnet20', input: [8, 8, 1], classes: 3 };
  const a = await savedModel('bench-a', ref, { name: 'synthetic', samples: 32 }, 21);
  const b = await savedModel('bench-b', ref, { name: 'synthetic', samples: 32 }, 22);
  const r = cli(['bench-infer', a.dir, b.dir, '--engine', 'onnxruntime,cpu,torch', '--threads', '1', '--batch', '4', '--repeats', '3', '--min-repeat-ms', '5', '--warmup', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^engine: onnxruntime 1\.\d+\.\d+ \(CPU execution provider, 1 intra-op thread, 1 inter-op\)$/m);
  const rows = JSON.parse(r.stdout) as { engine: string; dir: string; latencyMs: number; latencySpread: [number, number]; latencySaving: number; flopsSaving: number }[];
  assert.deepEqual(rows.map((x) => x.engine), ['onnxruntime', 'onnxruntime', 'cpu', 'cpu', 'torch', 'torch']);
  for (const x of rows) {
    assert.ok(x.latencyMs > 0 && x.latencySpread[0] <= x.latencyMs && x.latencyMs <= x.latencySpread[1], JSON.stringify(x));
  }
  for (const first of [rows[0], rows[2], rows[4]]) assert.deepEqual([first.dir, first.latencySaving, first.flopsSaving], [a.dir, 0, 0]);
  const bad = cli(['bench-infer', a.dir, '--engine', 'onnxruntime,tpu']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--engine: unknown engine 'tpu'/);
});
