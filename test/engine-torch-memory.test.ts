/**
 * Arrays the torch addon returns are freed by V8's own collector, without waiting for the event loop to turn. A
 * trial's training loop never yields to it, and when the addon handed out external buffers (freed by finalizers that
 * run only on a loop turn) precise BN's tapped activations stayed allocated for the whole trial: 600 MB a trial, until
 * a 160-candidate campaign was killed by the kernel at 24 GB.
 * The addon also keeps tensor memory on glibc's heap (no mmapped chunks, no trimming) so that steps reuse it instead of
 * faulting it in again; PRUNESPACE_TORCH_MALLOC=system keeps glibc's defaults.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { recalibrateBn } from '../src/training/bn-stats.js';
import { loadData } from '../src/training/data/load.js';
import { startTorch, torchAddon } from '../src/training/engines/torch.js';
import { preciseBnBatches } from '../src/training/train.js';

const { addon, problem } = torchAddon();

test('precise BN rounds in a loop that never yields keep the resident memory flat', { skip: addon ? false : `torch addon not built: ${problem}` }, async () => {
  const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
  const data = loadData({ name: 'synthetic', samples: 1200, augment: false }, { shape: spec.ref.input, classes: 10 });
  const started = startTorch(1, { cpuOnly: true });
  assert.ok(started.ok, started.detail);
  const net = await started.engine.build(spec, keepWidths(spec, 0.5), 1, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
  // 8 batches of 128 tap about 30 MB of activations each: 240 MB a round, 1.9 GB over 8 rounds if nothing is freed.
  const batches = preciseBnBatches(data, 8, 128, 1);
  await recalibrateBn(net, spec, batches);
  const before = process.memoryUsage().rss;
  let tapped = 0;
  for (let round = 0; round < 8; round++) {
    await recalibrateBn(net, spec, batches);
    tapped += batches.length;
  }
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  net.dispose();
  assert.equal(tapped, 64);
  assert.ok(grown < 400, `resident memory grew by ${grown.toFixed(0)} MB over 64 tapped forwards`);
});

/** The fixture's report from a child process started with the given environment. */
function allocatorChild(env: Record<string, string | undefined>): { policy: string; detail: string; blockBytes: number; grown: number } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/torch-allocator-fixture.ts'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('once the addon is loaded, large blocks stay on the heap (no mmapped chunks) unless PRUNESPACE_TORCH_MALLOC=system', { skip: addon ? false : `torch addon not built: ${problem}` }, () => {
  const heap = allocatorChild({ PRUNESPACE_TORCH_MALLOC: undefined });
  assert.equal(heap.policy, 'heap');
  assert.equal(heap.grown, 0, `a ${heap.blockBytes}-byte block was mmapped under the heap policy`);
  assert.doesNotMatch(heap.detail, /malloc/);
  const system = allocatorChild({ PRUNESPACE_TORCH_MALLOC: 'system' });
  assert.equal(system.policy, 'system');
  assert.ok(system.grown >= system.blockBytes, `glibc's defaults mapped ${system.grown} bytes for a ${system.blockBytes}-byte block`);
  assert.match(system.detail, /glibc malloc defaults/);
});
