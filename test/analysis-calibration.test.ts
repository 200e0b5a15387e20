/**
 * Family-wise calibration of refinement: with errors permuted across configurations (no link between
 * structure and error), `refine` must change the space in at most 10% of populations at its defaults.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nullRefineRates, wilsonInterval } from '../src/analysis/calibration.js';
import type { Observation } from '../src/analysis/population.js';
import { complexity } from '../src/complexity/count.js';
import { baseWidths } from '../src/nets/resolve.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace, parseSpace, type LoadedSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { makeRng } from '../src/util/rng.js';
import { gaussian, r20Space } from './analysis-fixtures.js';

/** n sampled configurations of a space with errors that do depend on structure (before they are permuted). */
function population(parent: LoadedSpace, n: number, seed: number): { obs: Observation[]; originalRatio: number } {
  const compiled = compileSpace(parent);
  const { configs } = sampleSpace(compiled, n, seed);
  const rng = makeRng(seed, 'calibration-errors');
  const original = complexity(compiled.net, baseWidths(compiled.net));
  const obs = configs.map((c, i) => {
    const ratio = c.complexity.flops / c.complexity.params;
    // Structure in the unpermuted errors (a ratio optimum, a wider last group helps) that permutation destroys.
    const last = c.widths[c.widths.length - 1] / compiled.net.groups[c.widths.length - 1].base;
    const error = 0.3 + 0.05 * (Math.log(ratio / 110)) ** 2 + 0.02 * (1 - last) + 0.01 * gaussian(rng);
    return { index: i, round: 0, error, testError: null, widths: c.widths, flops: c.complexity.flops, params: c.complexity.params, activations: c.complexity.activations, ratio };
  });
  return { obs, originalRatio: original.flops / original.params };
}

const PERMUTATIONS = 200;
const cases: [string, LoadedSpace][] = [
  ['resnet20 (12 groups)', parseSpace(r20Space, 'spaces/r20-test.json')],
  ['vgg16 (13 groups)', loadSpace('spaces/vgg16-cifar10.json')],
];

for (const [label, parent] of cases) {
  for (const n of [48, 200]) {
    test(`null calibration: ${label}, ${n} trials, ${PERMUTATIONS} permutations change the space at most 10% of the time`, (t) => {
      const { obs, originalRatio } = population(parent, n, 5);
      assert.equal(obs.length, n);
      const rates = nullRefineRates(parent, compileSpace(parent).net, originalRatio, obs, { permutations: PERMUTATIONS, seed: 1, refine: { seed: 1 } });
      const detail = JSON.stringify(rates);
      t.diagnostic(`${label}, ${n} trials: any change ${(100 * rates.anyChange).toFixed(1)}% (Wilson ${(100 * rates.wilson[0]).toFixed(1)}-${(100 * rates.wilson[1]).toFixed(1)}%); ${detail}`);
      // The rate is a Monte Carlo estimate: require its Wilson 95% upper bound, not just the estimate, under 10%.
      assert.ok(rates.wilson[1] <= 0.1, detail);
      // Rules do propose on the selection half at about their level; confirmation removes most.
      for (const rule of ['ratio', 'ranges']) assert.ok((rates.proposed[rule] ?? 0) <= 0.15, `${rule}: ${detail}`);
      assert.ok(rates.standardError <= Math.sqrt(0.25 / PERMUTATIONS));
    });
  }
}

test('Wilson interval: known values', () => {
  const [lo, hi] = wilsonInterval(10, 100);
  assert.ok(Math.abs(lo - 0.0552) < 1e-3 && Math.abs(hi - 0.1744) < 1e-3, `${lo} ${hi}`);
  assert.deepEqual(wilsonInterval(0, 0), [0, 1]);
});
