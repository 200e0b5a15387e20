/** Importance measures: the H·g product, each criterion against its formula, combining coupled convs, channel choice, and engines agreeing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelMap } from '../src/nets/channels.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import type { NetSpec } from '../src/nets/types.js';
import { chooseKept } from '../src/pruning/choose.js';
import { finiteDifferenceHv, hessianGradient, meanGradient } from '../src/pruning/gradients.js';
import { combineScores, CRITERIA, criterionNames, scoreGroups, scoringTemperature } from '../src/pruning/importance.js';
import { widthsForFlops } from '../src/pruning/targets.js';
import { complexity } from '../src/complexity/count.js';
import { selectBackend } from '../src/training/backends/select.js';
import { makeBatch, normaliser } from '../src/training/data/batch.js';
import { loadData } from '../src/training/data/load.js';
import type { EngineBatch, EngineNet, WeightSet } from '../src/training/engine.js';
import { selectEngine } from '../src/training/engines/select.js';
import { tfjsEngine } from '../src/training/engines/tfjs.js';
import { startTorch } from '../src/training/engines/torch.js';
import { checkKept } from '../src/training/inherit.js';
import { UserError } from '../src/util/errors.js';
import { makeRng } from '../src/util/rng.js';
import { tinyResNet } from './tiny-net.js';

const ws = (data: number[]): WeightSet => new Map([['w', { shape: [data.length], data: Float32Array.from(data) }]]);
const vec = (w: WeightSet) => [...w.get('w')!.data];

test('central-difference H·v: exact on a quadratic, second-order accurate on a quartic', async () => {
  // L = ½ θᵀAθ + bᵀθ: gradient Aθ + b, Hessian A.
  const A = [
    [2, -1, 0.5],
    [-1, 3, 0.25],
    [0.5, 0.25, 1],
  ];
  const grad = async (w: WeightSet) => ws(A.map((row, i) => row.reduce((s, a, j) => s + a * vec(w)[j], 0) + [0.3, -0.2, 0.1][i]));
  const v = [1, -2, 0.5];
  const hv = vec(await finiteDifferenceHv(grad, ws([0.4, -0.7, 1.1]), ws(v), 1e-3));
  A.forEach((row, i) => assert.ok(Math.abs(hv[i] - row.reduce((s, a, j) => s + a * v[j], 0)) < 1e-3, `row ${i}`));
  // L = Σ θ⁴/4: Hessian diag(3θ²).
  const theta = [0.5, -1.5, 2];
  const quartic = async (w: WeightSet) => ws(vec(w).map((t) => t ** 3));
  const hq = vec(await finiteDifferenceHv(quartic, ws(theta), ws(v), 1e-3));
  theta.forEach((t, i) => assert.ok(Math.abs(hq[i] - 3 * t * t * v[i]) < 1e-3 * Math.abs(3 * t * t * v[i]) + 1e-4, `diag ${i}: ${hq[i]}`));
});

function batches(spec: NetSpec, n: number, size: number): EngineBatch[] {
  const data = loadData({ name: 'synthetic', samples: n * size + 8 }, { shape: spec.ref.input, classes: spec.ref.classes });
  const lut = normaliser(data);
  return Array.from({ length: n }, (_, b) => makeBatch(data, data.train, Int32Array.from({ length: size }, (_, i) => b * size + i), lut));
}

async function tinyNet(backend: 'cpu' | 'wasm', spec: NetSpec): Promise<EngineNet> {
  const b = await selectBackend(backend);
  return tfjsEngine(b).build(spec, baseWidths(spec), 3, { momentum: 0.9, nesterov: false, weightDecay: 0 });
}

const dot = (a: WeightSet, b: WeightSet) => [...a].reduce((s, [n, t]) => s + t.data.reduce((x, v, i) => x + v * b.get(n)!.data[i], 0), 0);

async function symmetry(spec: NetSpec, relStep: number): Promise<[number, number, EngineNet, WeightSet]> {
  const net = await tinyNet('cpu', spec);
  const bs = batches(spec, 2, 8);
  const r = await hessianGradient(net, bs, { relStep });
  assert.equal(r.method, 'finite-difference');
  const theta = new Map([...(await net.readWeights())].filter(([n]) => r.g.has(n)));
  const rng = makeRng(1, 'u');
  const u: WeightSet = new Map([...r.g].map(([n, t]) => [n, { shape: t.shape, data: t.data.map(() => rng() - 0.5) }]));
  const gradAt = async (w: WeightSet) => {
    await net.writeWeights(w);
    return meanGradient(net, bs);
  };
  const hu = await finiteDifferenceHv(gradAt, theta, u, relStep);
  await net.writeWeights(theta);
  return [dot(u, r.hg), dot(r.g, hu), net, theta];
}

test('H·g on a tiny net: the finite-difference Hessian is symmetric (uᵀHg = gᵀHu) and says how it was computed', async () => {
  // Without ReLUs the loss is smooth and central differences converge.
  const [a, b, smooth] = await symmetry(tinyResNet('zeropad', true), 1e-3);
  assert.ok(Math.abs(a - b) <= 1e-2 * Math.abs(b), `smooth: uᵀHg ${a} vs gᵀHu ${b}`);
  smooth.dispose();
  // With ReLUs, the default step keeps activation flips rare.
  const [c, d, net, theta] = await symmetry(tinyResNet(), 1e-5);
  assert.ok(Math.abs(c - d) <= 0.1 * Math.abs(d), `relu: uᵀHg ${c} vs gᵀHu ${d}`);
  // Weights are restored after the finite differences.
  assert.deepEqual((await net.readWeights()).get('stem/kernel')!.data, theta.get('stem/kernel')!.data);
  net.dispose();
});

test('each criterion computes its formula on the stem filters', async () => {
  const spec = tinyResNet();
  const net = await tinyNet('cpu', spec);
  const bs = batches(spec, 2, 8);
  const map = channelMap(spec);
  const w = await net.readWeights();
  const g = await meanGradient(net, bs);
  const k = w.get('stem/kernel')!;
  const gk = g.get('stem/kernel')!;
  const cout = k.shape[3];
  const filter = (c: number, t = k) => [...t.data].filter((_, i) => i % cout === c);
  const c = 2;
  const stemScores = async (name: string) => (await scoreGroups(net, map, name, bs)).members[0][0][c];
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b) + 1e-9, `${what}: ${a} vs ${b}`);
  close(await stemScores('l1'), filter(c).reduce((s, v) => s + Math.abs(v), 0), 'l1');
  close(await stemScores('l2'), Math.sqrt(filter(c).reduce((s, v) => s + v * v, 0)), 'l2');
  const prods = filter(c).map((v, i) => v * filter(c, gk)[i]);
  close(await stemScores('snip'), prods.reduce((s, p) => s + Math.abs(p), 0), 'snip');
  close(await stemScores('taylor'), Math.abs(prods.reduce((s, p) => s + p, 0)), 'taylor');
  close(await stemScores('biased-loss'), filter(c).reduce((s, v, i) => s + Math.abs(v * v * filter(c, gk)[i]), 0), 'biased-loss');
  const gamma = w.get('stem.bn/gamma')!.data;
  const bnScores = await scoreGroups(net, map, 'bn-scale', bs);
  close(bnScores.members[0][0][c], Math.abs(gamma[c]), 'bn-scale');
  const beta = w.get('stem.bn/beta')!.data;
  // bn-taylor squares each batch's sum before averaging (Molchanov et al. 2019), which differs from squaring the mean.
  let perBatch = 0;
  for (const b of bs) {
    const gb = await meanGradient(net, [b]);
    perBatch += (b.size / 16) * (gamma[c] * gb.get('stem.bn/gamma')!.data[c] + beta[c] * gb.get('stem.bn/beta')!.data[c]) ** 2;
  }
  const squaredMean = (gamma[c] * g.get('stem.bn/gamma')!.data[c] + beta[c] * g.get('stem.bn/beta')!.data[c]) ** 2;
  close((await scoreGroups(net, map, 'bn-taylor', bs)).members[0][0][c], perBatch, 'bn-taylor');
  assert.ok(Math.abs(perBatch - squaredMean) > 1e-3 * perBatch, 'per-batch squares differ from the squared mean here');
  // At equal temperatures gradnorm is |grasp| (their defaults differ: 1 and 200).
  const grasp = await scoreGroups(net, map, 'grasp', bs, { temperature: 1 });
  const gradnorm = await scoreGroups(net, map, 'gradnorm', bs);
  assert.equal(grasp.hessian, 'finite-difference');
  assert.ok(grasp.members.some((m) => m.some((a) => a.some((s) => s < 0))), 'grasp scores are signed');
  grasp.members[0][0].forEach((s, i) => close(gradnorm.members[0][0][i], Math.abs(s), 'gradnorm = |grasp|'));
  const r1 = await scoreGroups(net, map, 'random', bs, { seed: 4 });
  const r2 = await scoreGroups(net, map, 'random', bs, { seed: 4 });
  assert.deepEqual(r1.scores, r2.scores);
  assert.notDeepEqual(r1.scores[0], (await scoreGroups(net, map, 'random', bs, { seed: 5 })).scores[0]);
  await assert.rejects(scoreGroups(net, map, 'magnitude', bs), (e: Error) => e instanceof UserError && /unknown criterion 'magnitude' \(known: l1, l2/.test(e.message));
  assert.ok(criterionNames().length >= 9);
  net.dispose();
});

test('scoring temperatures: 200 for grasp, 1 for gradnorm and the rest (flowandprune main.py); a user T must be > 0', async () => {
  assert.equal(CRITERIA.grasp.temperature, 200);
  for (const name of criterionNames().filter((n) => n !== 'grasp')) assert.equal(CRITERIA[name].temperature, 1, name);
  assert.equal(scoringTemperature('grasp'), 200);
  assert.equal(scoringTemperature('gradnorm'), 1);
  assert.equal(scoringTemperature('grasp', 5), 5);
  for (const bad of [0, -1, Number.NaN]) assert.throws(() => scoringTemperature('snip', bad), (e: Error) => e instanceof UserError && /--temperature must be a number > 0/.test(e.message));
  assert.throws(() => scoringTemperature('magnitude'), (e: Error) => e instanceof UserError && /unknown criterion/.test(e.message));
  // The defaults are what scoring uses: grasp without a temperature scores as at T = 200, gradnorm as at T = 1.
  const spec = tinyResNet();
  const net = await tinyNet('cpu', spec);
  const bs = batches(spec, 1, 8);
  const map = channelMap(spec);
  const at = async (name: string, temperature?: number) => (await scoreGroups(net, map, name, bs, temperature === undefined ? {} : { temperature })).members[0][0];
  assert.deepEqual(await at('gradnorm'), await at('gradnorm', 1));
  assert.deepEqual(await at('grasp'), await at('grasp', 200));
  assert.notDeepEqual(await at('grasp'), await at('grasp', 1));
  await assert.rejects(scoreGroups(net, map, 'snip', bs, { temperature: 0 }), UserError);
  net.dispose();
});

/** The loss of one batch at weights w (only the engine's forward pass and loss; its gradients are not read). */
async function lossAt(net: EngineNet, b: EngineBatch, w: WeightSet): Promise<number> {
  await net.writeWeights(w);
  return (await net.gradients(b, { kind: 'cross-entropy' }, { training: false })).loss;
}

test('H·g against an independent second difference of the loss: aᵀ(Hg) = ∂²L/∂a∂g, tfjs cpu and torch', async (t) => {
  // Mixed central difference of losses alone: (L(+a+b) − L(+a−b) − L(−a+b) + L(−a−b)) / 4h², b = g/‖g‖, on the smooth tiny net.
  const spec = tinyResNet('zeropad', true);
  const bs = batches(spec, 1, 8);
  const backends: ('cpu' | 'torch')[] = ['cpu'];
  if (startTorch(1).ok) backends.push('torch');
  else t.diagnostic('torch addon not built: checked tfjs cpu (finite-difference H·g) only');
  for (const backend of backends) {
    const { engine } = await selectEngine(backend);
    const net = await engine.build(spec, baseWidths(spec), 3, { momentum: 0.9, nesterov: false, weightDecay: 0 });
    const r = await hessianGradient(net, bs, backend === 'cpu' ? { relStep: 1e-3 } : {});
    assert.equal(r.method, backend === 'torch' ? 'double-backprop' : 'finite-difference');
    const theta = new Map([...(await net.readWeights())].filter(([n]) => r.g.has(n)));
    const rng = makeRng(9, 'direction');
    const unit = (w: WeightSet): WeightSet => {
      const n = Math.sqrt(dot(w, w));
      return new Map([...w].map(([k, x]) => [k, { shape: x.shape, data: x.data.map((v) => v / n) }]));
    };
    const a = unit(new Map([...r.g].map(([n, x]) => [n, { shape: x.shape, data: x.data.map(() => rng() - 0.5) }])));
    const b = unit(r.g);
    const gNorm = Math.sqrt(dot(r.g, r.g));
    const h = 0.05;
    const at = (sa: number, sb: number): WeightSet =>
      new Map([...theta].map(([n, x]) => [n, { shape: x.shape, data: x.data.map((v, i) => v + h * (sa * a.get(n)!.data[i] + sb * b.get(n)!.data[i])) }]));
    const mixed = ((await lossAt(net, bs[0], at(1, 1))) - (await lossAt(net, bs[0], at(1, -1))) - (await lossAt(net, bs[0], at(-1, 1))) + (await lossAt(net, bs[0], at(-1, -1)))) / (4 * h * h);
    await net.writeWeights(theta);
    const product = dot(a, r.hg) / gNorm;
    // Measured: 0.04602 (both engines) against 0.04596.
    assert.ok(Math.abs(product - mixed) <= 0.01 * Math.abs(mixed) && Math.abs(mixed) > 1e-3, `${backend}: aᵀHg/‖g‖ ${product} vs second difference ${mixed}`);
    net.dispose();
  }
  await selectBackend('auto');
});

test('coupled convs combine by sum, mean or max of scores normalised by their mean absolute value', () => {
  const a = Float64Array.from([1, 2, 3]); // mean |a| 2: 0.5, 1, 1.5
  const b = Float64Array.from([30, 0, -30]); // mean |b| 20: 1.5, 0, -1.5
  assert.deepEqual([...combineScores([a, b], 'sum')], [2, 1, 0]);
  assert.deepEqual([...combineScores([a, b], 'mean')], [1, 0.5, 0]);
  assert.deepEqual([...combineScores([a, b], 'max')], [1.5, 1, 1.5]);
  // The ranking differs: max keeps channel 2 alongside 0, sum drops it.
  assert.deepEqual([...combineScores([Float64Array.from([0, 0, 0]), a], 'sum')], [0.5, 1, 1.5], 'an all-zero member is left as it is');
});

test('kept channels: top scores per group, and zero-pad chains that agree on their shared positions', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 });
  const map = channelMap(spec);
  const base = baseWidths(spec);
  const rng = makeRng(2, 'scores');
  for (let trial = 0; trial < 50; trial++) {
    const scores = base.map((w) => Float64Array.from({ length: w }, () => rng()));
    const widths = base.map((w) => 1 + Math.floor(rng() * w));
    const kept = chooseKept(map, scores, base, widths);
    assert.deepEqual(kept.map((k) => k.length), widths);
    checkKept(spec, base, kept, map);
    // Outside chains a group keeps exactly its best channels.
    const g = 3;
    const best = [...scores[g].keys()].sort((x, y) => scores[g][y] - scores[g][x]).slice(0, widths[g]).sort((x, y) => x - y);
    assert.deepEqual(kept[g], best);
  }
  // A chain of equal widths keeps the channels of the best mean score, the same in every group, within stage 1's 16.
  const scores = base.map((w) => Float64Array.from({ length: w }, (_, c) => (c === 3 || c === 7 ? 10 : c === 40 ? 100 : 1)));
  const widths = [...base];
  widths[0] = widths[1] = widths[2] = 2;
  const kept = chooseKept(map, scores, base, widths);
  assert.deepEqual([kept[0], kept[1], kept[2]], [[3, 7], [3, 7], [3, 7]]);
  widths[2] = 3;
  assert.deepEqual(chooseKept(map, scores, base, widths)[2], [3, 7, 40]);
});

test('a FLOPs target gives the widest uniform widths under it, and an unreachable one is refused', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 });
  const base = baseWidths(spec);
  const full = complexity(spec, base).flops;
  const r = widthsForFlops(spec, base, 0.5);
  assert.ok(r.flops <= 0.5 * full && r.flops > 0.4 * full, `${r.flops} of ${full}`);
  assert.throws(() => widthsForFlops(spec, base, 100), (e: Error) => e instanceof UserError && /below the .* of one channel per group/.test(e.message));
});

test('engines give the same scores on a tiny net: tfjs cpu and wasm, and torch (exact H·g) where its addon is built', async (t) => {
  const spec = tinyResNet();
  const map = channelMap(spec);
  const bs = batches(spec, 2, 8);
  const names: ('cpu' | 'wasm' | 'torch')[] = ['cpu', 'wasm'];
  if (startTorch(1).ok) names.push('torch');
  else t.diagnostic('torch addon not built: compared cpu and wasm only');
  const results: Record<string, Float64Array[]>[] = [];
  for (const backend of names) {
    const { engine } = await selectEngine(backend);
    const net = await engine.build(spec, baseWidths(spec), 3, { momentum: 0.9, nesterov: false, weightDecay: 0 });
    const out: Record<string, Float64Array[]> = {};
    for (const name of ['l2', 'snip', 'taylor', 'bn-taylor', 'grasp']) {
      const r = await scoreGroups(net, map, name, bs);
      out[name] = r.scores;
      if (name === 'grasp') assert.equal(r.hessian, backend === 'torch' ? 'double-backprop' : 'finite-difference');
    }
    results.push(out);
    net.dispose();
  }
  await selectBackend('auto');
  for (let e = 1; e < results.length; e++) {
    for (const name of Object.keys(results[0])) {
      results[0][name].forEach((s, g) => {
        const scale = Math.max(...s.map(Math.abs));
        // Central differences against double backpropagation agreed to 2e-4 of the largest score here.
        const tol = name === 'grasp' ? 1e-2 : 1e-4;
        s.forEach((v, c) => assert.ok(Math.abs(v - results[e][name][g][c]) <= tol * scale, `${names[e]} ${name} group ${g} channel ${c}: ${v} vs ${results[e][name][g][c]}`));
      });
    }
  }
});

test('weight-based criteria score every group of every family with one score per channel', async () => {
  const b = await selectBackend('cpu');
  for (const [family, input] of [['vgg-small', [16, 16, 3]], ['mobilenet-v1-cifar', [8, 8, 3]], ['mobilenet-v2-cifar', [8, 8, 3]], ['resnet20', [8, 8, 3]]] as [string, [number, number, number]][]) {
    const spec = buildNet({ family, input, classes: 3 });
    const map = channelMap(spec);
    const base = baseWidths(spec);
    const net = await tfjsEngine(b).build(spec, base, 1, { momentum: 0.9, nesterov: false, weightDecay: 0 });
    for (const name of ['l1', 'bn-scale', 'random']) {
      const { scores, members } = await scoreGroups(net, map, name, []);
      scores.forEach((s, g) => assert.equal(s.length, base[g], `${family} ${name} group ${g}`));
      if (name === 'l1') {
        // A MobileNet group holding a depthwise conv scores its filters too.
        map.groups.forEach((g, i) => assert.equal(members[i].length, g.convs.length + g.depthwise.length));
      }
      const widths = base.map((w) => Math.max(1, Math.floor(w / 3)));
      checkKept(spec, base, chooseKept(map, scores, base, widths), map);
    }
    net.dispose();
  }
  await selectBackend('auto');
});
