/** --test-subset: a fixed seeded share of the test split, the same for every trial; the rest of the data untouched. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prepareData } from '../src/training/data/prepare.js';
import { loadData } from '../src/training/data/load.js';
import { UserError } from '../src/util/errors.js';

const raw = () => loadData({ name: 'synthetic', samples: 200 }, { shape: [4, 4, 1], classes: 3 });

test('a test subset is a fixed, sorted, distinct share of the test split', () => {
  const full = raw();
  const rawSet = { name: full.name, shape: full.shape, classes: full.classes, train: full.train.source, test: full.test.source, augment: full.augment };
  const base = prepareData(rawSet);
  const a = prepareData(rawSet, { testSubset: 0.25 });
  const b = prepareData(rawSet, { testSubset: 0.25 });
  const n = base.test.indices.length;
  assert.equal(a.test.indices.length, Math.round(n * 0.25));
  assert.deepEqual([...a.test.indices], [...b.test.indices]);
  assert.deepEqual([...a.test.indices], [...a.test.indices].sort((x, y) => x - y));
  assert.equal(new Set(a.test.indices).size, a.test.indices.length);
  assert.ok(a.test.indices.every((i) => i >= 0 && i < n));
  assert.notDeepEqual([...a.test.indices], [...base.test.indices].slice(0, a.test.indices.length), 'a sample, not the first images');
  assert.deepEqual([...a.train.indices], [...base.train.indices], 'training split unchanged');
  assert.deepEqual([...a.val.indices], [...base.val.indices], 'validation split unchanged');
  assert.throws(() => prepareData(rawSet, { testSubset: 0 }), UserError);
});
