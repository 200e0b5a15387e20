import assert from 'node:assert/strict';
import { test } from 'node:test';
import { complexity, nodeComplexity } from '../src/complexity/count.js';
import { compileComplexity } from '../src/complexity/terms.js';
import { buildNet, familyNames } from '../src/nets/registry.js';
import { baseWidths, keepWidths, resolveNet } from '../src/nets/resolve.js';
import { makeRng } from '../src/util/rng.js';

const original = (family: string, input?: [number, number, number], classes?: number) => {
  const spec = buildNet({ family, input, classes });
  return complexity(spec, baseWidths(spec));
};

test('published figures of the original networks', () => {
  const r56 = original('resnet56', [32, 32, 3], 10);
  assert.equal(r56.flops, 125_485_696);
  assert.equal(r56.params, 853_018);
  const r50 = original('resnet50', [224, 224, 3], 1000);
  assert.equal(r50.flops, 4_089_184_256);
  assert.equal(r50.params, 25_557_032);
  const mb2 = original('mobilenet-v2', [224, 224, 3], 1000);
  assert.equal(mb2.flops, 300_774_272); // published as 300.8M
  assert.equal(mb2.params, 3_504_872);
  const v16 = original('vgg16', [32, 32, 3], 10);
  assert.equal(v16.flops, 313_201_664); // published as 313.2M
  assert.equal(v16.params, 14_728_266);
});

test('other originals match their usual figures', () => {
  assert.equal(original('resnet20').params, 269_722);
  assert.equal(original('resnet110').params, 1_727_962);
  assert.equal(original('mobilenet-v1').params, 4_231_976);
  assert.equal((original('mobilenet-v1').flops / 1e6).toFixed(0), '569');
  assert.equal((original('vgg-small').flops / 1e6).toFixed(0), '608');
});

/** An independent count written straight from the layer formulas over the resolved graph. */
function layerSum(family: string, widths: number[]) {
  const spec = buildNet({ family });
  let flops = 0;
  let params = 0;
  for (const { node, inputs, output } of resolveNet(spec, widths)) {
    const cin = inputs[0]?.[2] ?? 0;
    const spatial = output[0] * output[1];
    if (node.op === 'conv') {
      flops += node.kernel ** 2 * cin * output[2] * spatial;
      params += node.kernel ** 2 * cin * output[2] + (node.bias ? output[2] : 0);
    } else if (node.op === 'depthwise') {
      flops += node.kernel ** 2 * cin * spatial;
      params += node.kernel ** 2 * cin;
    } else if (node.op === 'linear') {
      const features = inputs[0][0] * inputs[0][1] * inputs[0][2];
      flops += features * node.units;
      params += (features + 1) * node.units;
    } else if (node.op === 'bn') {
      params += 2 * cin;
    }
  }
  return { flops, params };
}

test('the count equals an independent sum over the layers, and the compiled polynomial agrees', () => {
  const rng = makeRng(7, 'complexity-test');
  for (const family of familyNames()) {
    const spec = buildNet({ family });
    const model = compileComplexity(spec);
    for (let k = 0; k < 3; k++) {
      const widths = spec.groups.map((g) => 1 + Math.floor(rng() * g.base));
      const c = complexity(spec, widths);
      const independent = layerSum(family, widths);
      assert.equal(c.flops, independent.flops, `${family} flops`);
      assert.equal(c.params, independent.params, `${family} params`);
      assert.deepEqual(model.evaluate(widths), c, `${family} compiled`);
    }
  }
});

test('pruning a group changes every conv that belongs to it, and only those and their consumers', () => {
  for (const family of ['resnet56', 'mobilenet-v2', 'resnet50', 'vgg16']) {
    const spec = buildNet({ family });
    const full = baseWidths(spec);
    const before = resolveNet(spec, full);
    for (const group of spec.groups) {
      const widths = full.slice();
      widths[group.id] = Math.max(1, Math.floor(group.base / 2));
      const after = resolveNet(spec, widths);
      before.forEach((b, i) => {
        const a = after[i];
        const producesGroup = b.node.op === 'conv' && b.node.out === group.id;
        if (producesGroup) assert.equal(a.output[2], widths[group.id], `${family} ${b.node.id} output`);
        const changed = nodeComplexity(a).params !== nodeComplexity(b).params;
        if (producesGroup) assert.ok(changed, `${family}: ${b.node.id} belongs to ${group.name} but kept its params`);
      });
    }
  }
});

test('residual adds only join outputs of one group', () => {
  for (const family of familyNames()) {
    const spec = buildNet({ family });
    const widths = spec.groups.map((g) => Math.max(1, g.base - 1 - (g.id % 3)));
    // resolveNet throws when an add meets different shapes, so distinct widths per group prove grouping.
    assert.doesNotThrow(() => resolveNet(spec, widths), family);
  }
});

test('--keep rounds half up and keeps at least one channel', () => {
  const spec = buildNet({ family: 'resnet20' });
  const widths = keepWidths(spec, 0.5);
  assert.deepEqual(widths.slice(0, 3), [8, 16, 32]);
  assert.ok(keepWidths(spec, 0.01).every((w) => w === 1));
  const v2 = buildNet({ family: 'mobilenet-v2' });
  // 0.5 x 24 = 12; 0.5 x 1280 = 640; a base width of 96 at 0.3 gives 28.8 -> 29.
  assert.equal(keepWidths(v2, 0.3)[v2.groups.find((g) => g.base === 96)!.id], 29);
});

test('projection shortcuts add 1x1 convs at stage transitions only', () => {
  const zero = original('resnet20');
  const proj = buildNet({ family: 'resnet20', shortcut: 'projection' });
  const p = complexity(proj, baseWidths(proj));
  // 16x32 and 32x64 1x1 convs, each with BN.
  assert.equal(p.params - zero.params, 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
});
