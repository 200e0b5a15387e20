/**
 * The torch engine's memory format: channels-last exactly where every convolution's channel counts are multiples of
 * 8 on the CPU (where oneDNN trains faster), NCHW elsewhere, and the same numbers either way: a net in channels-last
 * and the same net forced to NCHW, from the same weights, agree on logits, taps, gradients (cross-entropy and a
 * TypeScript loss through taps), H·v, optimizer steps, BN statistics and momentum buffers, and read and write weights
 * in the same tfjs layout. Skipped, with the reason shown, only where the addon was not built.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import type { WeightSet } from '../src/training/engine.js';
import { startTorch, torchAddon, TorchNet } from '../src/training/engines/torch.js';
import { batchOf, compareWithTorch, depthwiseNet, relMax, tfjsTrajectory } from './torch-equivalence.js';

const { addon, problem } = torchAddon();
const skip = addon ? false : `torch addon not built: ${problem}`;
const OPT = { momentum: 0.9, nesterov: true, weightDecay: 5e-4 };

function worst(a: WeightSet, b: WeightSet): number {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let w = 0;
  for (const [name, t] of a) {
    assert.deepEqual(b.get(name)!.shape, t.shape, name);
    w = Math.max(w, relMax(t.data, b.get(name)!.data));
  }
  return w;
}

test('auto picks channels-last only where every convolution is 8-aligned on the CPU; a forced format is kept', { skip }, () => {
  const spec = buildNet({ family: 'resnet20', input: [10, 10, 1], classes: 4 });
  const cases: [number[], string, string][] = [
    [keepWidths(spec, 0.5), 'auto', 'channels-last'], // 8, 16, 32 everywhere; the stem reads the 1-channel input
    [keepWidths(spec, 0.5).map((w, i) => (i === 4 ? 13 : w)), 'auto', 'nchw'], // one block's inner width at 13
    [keepWidths(spec, 0.5), 'nchw', 'nchw'],
    [keepWidths(spec, 0.5).map((w, i) => (i === 4 ? 13 : w)), 'channels-last', 'channels-last'],
  ];
  for (const [widths, asked, got] of cases) {
    const net = new TorchNet(addon!, spec, widths, 'cpu', OPT, 0, asked);
    assert.equal(net.memoryFormat(), got, `${asked} at ${widths.join(',')}`);
    net.dispose();
  }
  // Depthwise convolutions are unmeasured channels-last: auto leaves them NCHW even at aligned widths.
  const dw = new TorchNet(addon!, depthwiseNet(), [8, 8, 16], 'cpu', OPT, 0, 'auto');
  assert.equal(dw.memoryFormat(), 'nchw');
  dw.dispose();
  assert.throws(() => new TorchNet(addon!, spec, keepWidths(spec, 0.5), 'cpu', OPT, 0, 'nhwc'), /memory format must be auto, nchw or channels-last, got 'nhwc'/);
});

test('PRUNESPACE_TORCH_MEMORY_FORMAT: a bad value stops the engine in one line; a forced format is named at start', { skip }, () => {
  const saved = process.env.PRUNESPACE_TORCH_MEMORY_FORMAT;
  try {
    process.env.PRUNESPACE_TORCH_MEMORY_FORMAT = 'fast';
    const bad = startTorch(1, { cpuOnly: true });
    assert.equal(bad.ok, false);
    assert.match(bad.detail, /^PRUNESPACE_TORCH_MEMORY_FORMAT must be auto, channels-last, nchw, got 'fast'$/);
    process.env.PRUNESPACE_TORCH_MEMORY_FORMAT = 'nchw';
    const forced = startTorch(1, { cpuOnly: true });
    assert.ok(forced.ok);
    assert.match(forced.detail, /nchw forced/);
  } finally {
    if (saved === undefined) delete process.env.PRUNESPACE_TORCH_MEMORY_FORMAT;
    else process.env.PRUNESPACE_TORCH_MEMORY_FORMAT = saved;
  }
});

test('channels-last computes what NCHW computes: forward, taps, gradients, H·v, steps, BN statistics, momentum', { skip }, async () => {
  const auto = startTorch(1, { cpuOnly: true, memoryFormat: 'auto' });
  const nchw = startTorch(1, { cpuOnly: true, memoryFormat: 'nchw' });
  assert.ok(auto.ok && nchw.ok);
  const spec = buildNet({ family: 'resnet20', input: [10, 10, 1], classes: 4 });
  const widths = keepWidths(spec, 0.5);
  const [a, b] = [await auto.engine.build(spec, widths, 7, OPT), await nchw.engine.build(spec, widths, 7, OPT)];
  assert.equal((a as TorchNet).memoryFormat(), 'channels-last');
  assert.equal((b as TorchNet).memoryFormat(), 'nchw');
  // Same seed, same weights, read back in the same tfjs layout.
  assert.equal(worst(await a.readWeights(), await b.readWeights()), 0);
  const batch = batchOf(spec, 16, 2);
  const taps = ['stem.bn', 'stage2.block1.add', 'pool'];
  for (const training of [true, false]) {
    const [fa, fb] = [await a.forward(batch, { training, taps }), await b.forward(batch, { training, taps })];
    for (const id of taps) assert.ok(relMax(fb.taps.get(id)!, fa.taps.get(id)!) < 1e-5, `tap ${id}, training ${training}`);
    assert.ok(relMax(fb.logits, fa.logits) < 1e-5);
  }
  const ce = { kind: 'cross-entropy' as const, labelSmoothing: 0.1, temperature: 2 };
  const [ga, gb] = [await a.gradients(batch, ce), await b.gradients(batch, ce)];
  assert.ok(Math.abs(ga.loss - gb.loss) < 1e-5);
  assert.ok(worst(gb.grads, ga.grads) < 1e-4, `cross-entropy grads ${worst(gb.grads, ga.grads)}`);
  // Seeds given in NHWC through a tap (the distillation path).
  const outputs = {
    kind: 'outputs' as const,
    taps: ['stage2.block1.add'],
    fn: (o: { logits: Float32Array; taps: Map<string, Float32Array> }) => {
      const t = o.taps.get('stage2.block1.add')!;
      return {
        loss: t.reduce((s, v) => s + 0.5 * v * v, 0),
        dTaps: new Map([['stage2.block1.add', t.slice()]]),
        dLogits: o.logits.map((_, i) => i % 4),
      };
    },
  };
  const [oa, ob] = [await a.gradients(batch, outputs), await b.gradients(batch, outputs)];
  assert.ok(worst(ob.grads, oa.grads) < 1e-4, `outputs grads ${worst(ob.grads, oa.grads)}`);
  const [ha, hb] = [await a.hessianVector!(batch, ce, gb.grads), await b.hessianVector!(batch, ce, gb.grads)];
  assert.ok(worst(hb, ha) < 1e-3, `H·v ${worst(hb, ha)}`);
  // Optimizer steps from given gradients (momentum and Nesterov on kernels held channels-last).
  await a.applyGradients(gb.grads, 0.05);
  await b.applyGradients(gb.grads, 0.05);
  assert.ok(worst(await b.readWeights(), await a.readWeights()) < 1e-5);
  assert.ok(worst(await b.readOptimizerState!(), await a.readOptimizerState!()) < 1e-5);
  // Momentum buffers written in tfjs layout onto kernels held channels-last read back unchanged.
  await a.writeOptimizerState!(await b.readOptimizerState!());
  assert.equal(worst(await b.readOptimizerState!(), await a.readOptimizerState!()), 0);
  a.dispose();
  b.dispose();
});

/**
 * Training steps (BN statistics move) compared one at a time, each from the NCHW net's weights, as
 * engine-torch-isa.test.ts compares torch with tfjs: training amplifies rounding, and a ReLU input within rounding of
 * zero (measured here once in three steps) decides a gradient differently in the two formats, so such steps are
 * counted, not compared.
 */
test('channels-last training steps match NCHW ones step by step within float32 rounding', { skip }, async () => {
  const auto = startTorch(1, { cpuOnly: true, memoryFormat: 'auto' });
  const nchw = startTorch(1, { cpuOnly: true, memoryFormat: 'nchw' });
  assert.ok(auto.ok && nchw.ok);
  const spec = buildNet({ family: 'resnet20', input: [10, 10, 1], classes: 4 });
  const widths = keepWidths(spec, 0.5);
  const probe = await auto.engine.build(spec, widths, 0, OPT);
  assert.equal((probe as TorchNet).memoryFormat(), 'channels-last');
  probe.dispose();
  const t = await tfjsTrajectory(nchw.engine, 'resnet20 keep 0.5', spec, widths, OPT, 8);
  const r = await compareWithTorch(auto.engine, t);
  assert.ok(r.excused <= r.steps / 2, `${r.excused} of ${r.steps} steps with differing ReLU masks`);
  assert.ok(r.grad <= 1, `gradients ${r.grad.toFixed(2)} times their allowance (${r.worstTensor})`);
  assert.ok(r.running < 1e-4 && r.pre < 1e-4 && r.loss < 1e-5, JSON.stringify(r));
});

