import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileComplexity } from '../src/complexity/terms.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { bnByGroup, stageTaps } from '../src/pruning/distill/channels.js';
import { maskedFeatureLoss, mutualKl, softKl, studentLoss, DEFAULT_WEIGHTS } from '../src/pruning/distill/losses.js';
import { selectChannels } from '../src/pruning/distill/select.js';
import { channelNorms, softThreshold, taylorSensitivity } from '../src/pruning/distill/sparsity.js';
import type { WeightSet } from '../src/training/engine.js';
import { isUserError } from '../src/util/errors.js';
import { makeRng } from '../src/util/rng.js';

const randn = (n: number, seed: string, scale = 1): Float32Array => {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => scale * (rng() * 2 - 1));
};

/** Central differences of f at x, coordinate by coordinate (float64 copies so the step is exact). */
function numericGrad(f: (x: Float32Array) => number, x: Float32Array, h = 1e-3): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = f(x);
    x[i] = keep - h;
    const down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('logit distillation: KL is zero at the teacher, positive elsewhere, gradient matches finite differences at several T', () => {
  const classes = 5;
  const teacher = randn(4 * classes, 't', 3);
  assert.ok(Math.abs(softKl(teacher.slice(), teacher, classes, 4).loss) < 1e-9);
  for (const T of [1, 4, 10]) {
    const student = randn(4 * classes, `s${T}`, 3);
    const r = softKl(student, teacher, classes, T);
    assert.ok(r.loss > 0);
    assertClose(r.grad, numericGrad((x) => softKl(x, teacher, classes, T).loss, student.slice()), 2e-3, `T=${T}`);
  }
});

test('T² scaling keeps the logit gradient of the same size across temperatures', () => {
  const classes = 10;
  const teacher = randn(8 * classes, 'tt', 2);
  const student = randn(8 * classes, 'ss', 2);
  const norm = (g: Float32Array) => Math.hypot(...g);
  // At high T the gradient tends to (s − t − mean) / (classes · batch), independent of T.
  const g20 = norm(softKl(student, teacher, classes, 20).grad);
  const g40 = norm(softKl(student, teacher, classes, 40).grad);
  assert.ok(Math.abs(g20 / g40 - 1) < 0.05, `${g20} vs ${g40}`);
});

test('mutual learning: gradient only through the student, peers detached; both directions differ', () => {
  const classes = 4;
  const a = randn(3 * classes, 'a', 2);
  const b = randn(3 * classes, 'b', 2);
  const c = randn(3 * classes, 'c', 2);
  const r = mutualKl(a, [b, c], classes, 2);
  assertClose(r.grad, numericGrad((x) => mutualKl(x, [b, c], classes, 2).loss, a.slice()), 2e-3, 'mutual');
  // KL is not symmetric: each student's term is the KL from its peer to itself.
  assert.notEqual(mutualKl(a, [b], classes, 1).loss.toFixed(6), mutualKl(b, [a], classes, 1).loss.toFixed(6));
  assert.equal(mutualKl(a, [], classes, 2).loss, 0);
});

test('masked feature loss: masked channels carry no loss and no gradient; gradient matches finite differences', () => {
  const channels = 3;
  const t = randn(2 * 4 * channels, 'ft');
  const s = randn(2 * 4 * channels, 'fs');
  const mask = [false, true, false];
  const r = maskedFeatureLoss(s, t, channels, mask);
  assertClose(r.grad, numericGrad((x) => maskedFeatureLoss(x, t, channels, mask).loss, s.slice()), 2e-3, 'feature');
  for (let i = 1; i < s.length; i += channels) assert.equal(r.grad[i], 0);
  // Changing a masked channel of the student changes nothing.
  const s2 = s.slice();
  for (let i = 1; i < s2.length; i += channels) s2[i] = 100;
  assert.equal(maskedFeatureLoss(s2, t, channels, mask).loss, r.loss);
  // Relative: the student at zero is exactly 1 away.
  assert.ok(Math.abs(maskedFeatureLoss(new Float32Array(s.length), t, channels, mask).loss - 1) < 1e-6);
});

test('a student\'s weighted loss: gradients over logits and taps match finite differences of the total', () => {
  const classes = 3;
  const ch = 2;
  const teacherLogits = randn(2 * classes, 'tl', 2);
  const peer = randn(2 * classes, 'pl', 2);
  const teacherTaps = new Map([['s1', randn(2 * 2 * ch, 'tf1')], ['s2', randn(2 * ch, 'tf2')]]);
  const logits = randn(2 * classes, 'sl', 2);
  const taps = new Map([['s1', randn(2 * 2 * ch, 'sf1')], ['s2', randn(2 * ch, 'sf2')]]);
  const w = { ...DEFAULT_WEIGHTS, logits: 0.7, features: 1.3, mutual: 0.5 };
  const stages = [{ tap: 's1', channels: ch, mask: [true, false] }, { tap: 's2', channels: ch }];
  const total = (l: Float32Array, tp: Map<string, Float32Array>) =>
    studentLoss({ logits: l, taps: tp, teacherLogits, teacherTaps, peerLogits: [peer], stages, classes }, w).loss;
  const r = studentLoss({ logits, taps, teacherLogits, teacherTaps, peerLogits: [peer], stages, classes }, w);
  assert.ok(Math.abs(r.loss - (0.7 * r.parts.logits + 1.3 * r.parts.features + 0.5 * r.parts.mutual)) < 1e-9);
  assertClose(r.dLogits, numericGrad((x) => total(x, taps), logits.slice()), 2e-3, 'dLogits');
  for (const id of ['s1', 's2']) {
    const base = taps.get(id)!;
    const num = numericGrad((x) => total(logits, new Map([...taps, [id, x]])), base.slice());
    assertClose(r.dTaps.get(id)!, num, 2e-3, `dTaps ${id}`);
  }
});

const bnWeights = (bns: string[], width: number, seed: string): WeightSet =>
  new Map(bns.flatMap((bn) => ['gamma', 'beta'].map((p) => [`${bn}/${p}`, { shape: [width], data: randn(width, `${seed}${bn}${p}`) }] as const)));

test('ISTA step: chosen channels shrink by tau in group norm or reach exactly zero; others untouched; it is the prox', () => {
  const bns = ['a', 'b'];
  const w = bnWeights(bns, 6, 'ista');
  const before = channelNorms(w, bns, 6);
  const tau = 0.3;
  const out = softThreshold(w, bns, [0, 2, 3], tau);
  const after = channelNorms(new Map([...w, ...out]), bns, 6);
  for (const c of [0, 2, 3]) {
    if (before[c] <= tau) assert.equal(after[c], 0);
    else assert.ok(Math.abs(after[c] - (before[c] - tau)) < 1e-6, `channel ${c}`);
  }
  for (const c of [1, 4, 5]) assert.equal(after[c], before[c]);
  // The input is not modified.
  assert.deepEqual(channelNorms(w, bns, 6), before);
  // Prox optimality on one channel: the result minimises ½||v − x||² + tau·||v|| (checked against perturbations).
  const x = [0, 1, 2, 3].map((i) => w.get(`${bns[i >> 1]}/${i & 1 ? 'beta' : 'gamma'}`)!.data[0]);
  const v = [0, 1, 2, 3].map((i) => out.get(`${bns[i >> 1]}/${i & 1 ? 'beta' : 'gamma'}`)!.data[0]);
  const objective = (u: number[]) => 0.5 * u.reduce((a, ui, i) => a + (ui - x[i]) ** 2, 0) + tau * Math.hypot(...u);
  const rng = makeRng('prox');
  for (let k = 0; k < 50; k++) {
    const u = v.map((vi) => vi + (rng() - 0.5) * 0.1);
    assert.ok(objective(u) >= objective(v) - 1e-6);
  }
  // A channel already zero stays zero.
  const again = softThreshold(new Map([...w, ...out]), bns, [0, 2, 3], tau);
  for (const c of [0, 2, 3]) if (after[c] === 0) assert.equal(channelNorms(new Map([...w, ...again]), bns, 6)[c], 0);
});

test('Taylor sensitivity is the square of Σ γ·dγ + β·dβ over the group\'s BN layers', () => {
  const bns = ['x', 'y'];
  const w = bnWeights(bns, 3, 'w');
  const g = bnWeights(bns, 3, 'g');
  const s = taylorSensitivity(w, g, bns, 3);
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (const bn of bns) for (const p of ['gamma', 'beta']) sum += w.get(`${bn}/${p}`)!.data[c] * g.get(`${bn}/${p}`)!.data[c];
    assert.ok(Math.abs(s[c] - sum * sum) < 1e-9);
  }
});

test('BN layers per group and stage outputs of a CIFAR ResNet and a VGG', () => {
  const r20 = buildNet({ family: 'resnet20' });
  const bns = bnByGroup(r20);
  // stage1: the stem and the three blocks' second convs.
  assert.deepEqual(bns[0], ['stem.bn', 'stage1.block1.conv2.bn', 'stage1.block2.conv2.bn', 'stage1.block3.conv2.bn']);
  assert.deepEqual(bns[3], ['stage1.block1.conv1.bn']);
  assert.equal(bns.flat().length, 19);
  assert.deepEqual(stageTaps(r20).map((t) => [t.tap, t.group]), [['stage1.block3.relu', 0], ['stage2.block3.relu', 1], ['stage3.block3.relu', 2]]);
  const proj = bnByGroup(buildNet({ family: 'resnet20', shortcut: 'projection' }));
  assert.ok(proj[1].includes('stage2.block1.shortcut.bn'));
  const v = buildNet({ family: 'vgg-small' });
  assert.deepEqual(stageTaps(v).map((t) => t.tap), ['pool1', 'pool2', 'pool3']);
});

test('channel selection meets a FLOPs target within one channel, adaptively per group', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1] });
  const model = compileComplexity(spec);
  const widths = baseWidths(spec);
  const full = model.evaluate(widths).flops;
  const rng = makeRng('scores');
  // Group 2 (stage3) is made very sensitive: it should lose far fewer channels than its share.
  const scores = widths.map((w, g) => Float64Array.from({ length: w }, () => (g === 2 ? 1000 : 1) * (0.5 + rng())));
  for (const fraction of [0.5, 0.3]) {
    const target = fraction * full;
    const sel = selectChannels(spec, widths, model, scores, { flops: target });
    assert.ok(sel.flops <= target, `${sel.flops} > ${target}`);
    assert.ok(sel.flops >= 0.98 * target, `${sel.flops} far below ${target}`);
    assert.equal(sel.flops, model.evaluate(sel.widths).flops);
    sel.chosen.forEach((c, g) => assert.equal(widths[g] - c.length, sel.widths[g]));
    // The least sensitive channels of a group go first.
    sel.chosen.forEach((c, g) => {
      const maxChosen = Math.max(-Infinity, ...c.map((i) => scores[g][i]));
      const kept = [...scores[g].keys()].filter((i) => !c.includes(i));
      assert.ok(kept.every((i) => scores[g][i] >= maxChosen));
    });
    assert.ok(sel.widths[2] / widths[2] > sel.widths[1] / widths[1], `stage3 kept ${sel.widths[2]}, stage2 ${sel.widths[1]}`);
  }
  // Channels already at zero (sensitivity 0) are chosen first.
  const z = scores.map((s) => s.slice());
  z[5][3] = 0;
  assert.ok(selectChannels(spec, widths, model, z, { flops: 0.9 * full }).chosen[5].includes(3));
});

test('channel selection by rate, and unreachable targets are user errors', () => {
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1] });
  const model = compileComplexity(spec);
  const widths = baseWidths(spec);
  const scores = widths.map((w) => Float64Array.from({ length: w }, (_, i) => i + 1));
  const total = widths.reduce((a, b) => a + b, 0);
  const sel = selectChannels(spec, widths, model, scores, { rate: 0.4 });
  assert.equal(sel.chosen.flat().length, Math.ceil(0.4 * total));
  assert.throws(() => selectChannels(spec, widths, model, scores, { flops: 10 }), (e) => isUserError(e) && /out of reach/.test(e.message));
  assert.throws(() => selectChannels(spec, widths, model, scores, { rate: 0.99 }), (e) => isUserError(e) && /out of reach/.test(e.message));
});

test('channel selection to given widths honours zero-pad couplings', async () => {
  const { removableRule, zeroPadCouplings } = await import('../src/pruning/distill/channels.js');
  const spec = buildNet({ family: 'resnet20', input: [8, 8, 1] });
  const model = compileComplexity(spec);
  const widths = baseWidths(spec);
  const rng = makeRng('w');
  const scores = widths.map((w) => Float64Array.from({ length: w }, () => rng()));
  const target = widths.map((w) => Math.max(1, Math.round(w * 0.6)));
  const removable = removableRule(zeroPadCouplings(spec), widths);
  const sel = selectChannels(spec, widths, model, scores, { widths: target }, removable);
  assert.deepEqual(sel.widths, target);
  // stage2 (group 1) only loses a channel below 16 that stage1 (group 0) lost too.
  for (const c of sel.chosen[1]) if (c < widths[0]) assert.ok(sel.chosen[0].includes(c), `stage2 channel ${c}`);
  assert.throws(() => selectChannels(spec, widths, model, scores, { widths: target.slice(1) }), (e) => isUserError(e));
});

test('FLOPs targets are met from below within 0.5% across families (shortcut couplings included)', async () => {
  const { removableRule, zeroPadCouplings } = await import('../src/pruning/distill/channels.js');
  for (const family of ['resnet20', 'resnet56', 'vgg-small', 'mobilenet-v2-cifar']) {
    const spec = buildNet({ family });
    const model = compileComplexity(spec);
    const widths = baseWidths(spec);
    const full = model.evaluate(widths).flops;
    const rng = makeRng(family);
    const scores = widths.map((w) => Float64Array.from({ length: w }, () => rng()));
    for (const f of [0.3, 0.5]) {
      const sel = selectChannels(spec, widths, model, scores, { flops: f * full }, removableRule(zeroPadCouplings(spec), widths));
      assert.ok(sel.flops <= f * full && sel.flops >= 0.995 * f * full, `${family} at ${f}: ${sel.flops / full}`);
    }
  }
});
