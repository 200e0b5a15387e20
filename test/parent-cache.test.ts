/** Inheriting trials read their parent once per worker: a cached parent trains exactly as a freshly read one. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { cachedParents, clearParentCache } from '../src/training/inherit.js';
import { runTrial } from '../src/training/trial.js';
import type { TrialRequest, TrialResult } from '../src/training/types.js';
import { tempDir, tinySettings } from './campaign-helpers.js';

const net = { family: 'resnet20' as const, input: [8, 8, 1] as [number, number, number], classes: 3 };
const spec = buildNet(net);
const full = baseWidths(spec);

/** Every group keeps its first half of channels, the zero-pad shortcuts' prefix rule holds. */
const kept = full.map((w) => Array.from({ length: Math.max(1, w >> 1) }, (_, i) => i));

function child(parent: string, seed: number): TrialRequest {
  return { net, widths: kept.map((k) => k.length), settings: tinySettings(64, 1), seed, init: { mode: 'inherit', parent, criterion: 'l1', kept } };
}

/** What a trial learned, without its timings. */
function learned(r: TrialResult): unknown {
  assert.equal(r.status, 'complete', r.error);
  return { valError: r.valError, valLoss: r.valLoss, trainLoss: r.trainLoss, testLoss: r.testLoss, curves: r.curves.map((c) => ({ ...c, seconds: 0, points: c.points?.map((p) => ({ ...p, seconds: 0 })) })) };
}

async function saveParent(dir: string, seed: number): Promise<void> {
  const r = await runTrial({ net, widths: full, settings: tinySettings(64, 1), seed, saveDir: dir });
  assert.equal(r.status, 'complete', r.error);
}

test('a worker reads the parent once for all its inheriting trials, and the results are those of a fresh read', async () => {
  const root = tempDir('parent-cache');
  const parent = join(root, 'parent');
  try {
    await saveParent(parent, 1);
    clearParentCache();
    const fresh = learned(await runTrial(child(parent, 5)));
    assert.equal(cachedParents(), 1);
    const cached = learned(await runTrial(child(parent, 5)));
    assert.deepEqual(cached, fresh);
    const other = learned(await runTrial(child(parent, 6)));
    assert.equal(cachedParents(), 1, 'a second trial of the same parent reads no new copy');
    assert.notDeepEqual(other, fresh);

    // A parent retrained in place is read again: the cached copy of the old one is not reused.
    await saveParent(parent, 2);
    const retrained = learned(await runTrial(child(parent, 5)));
    assert.notDeepEqual(retrained, fresh);
    clearParentCache();
    assert.deepEqual(learned(await runTrial(child(parent, 5))), retrained);
  } finally {
    clearParentCache();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a parent that cannot be read fails every trial that asks for it, not only the first', async () => {
  const root = tempDir('parent-cache-missing');
  try {
    clearParentCache();
    for (let i = 0; i < 2; i++) await assert.rejects(runTrial(child(join(root, 'nowhere'), 1)));
    assert.equal(cachedParents(), 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
