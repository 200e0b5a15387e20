/** Global allocation: budgets met within 1%, the --min-keep floor, widths that follow the scores, consistent coupled groups, refused targets. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { complexity } from '../src/complexity/count.js';
import { channelMap } from '../src/nets/channels.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import { allocateGlobal, globalPlan, minKeepWidths } from '../src/pruning/allocate.js';
import { chooseKept } from '../src/pruning/choose.js';
import { resolveTarget } from '../src/pruning/prune.js';
import { checkKept } from '../src/training/inherit.js';
import { UserError } from '../src/util/errors.js';
import { makeRng } from '../src/util/rng.js';

const spec = buildNet({ family: 'resnet20', input: [8, 8, 1], classes: 3 });
const full = baseWidths(spec);
const randomScores = (seed: number) => {
  const rng = makeRng(seed, 'scores');
  return full.map((w) => Float64Array.from({ length: w }, () => rng()));
};

test('a FLOPs or params budget is met within 1% under it, and every group keeps its --min-keep floor', () => {
  for (const [metric, share] of [['flops', 0.5], ['flops', 0.2], ['params', 0.4], ['params', 0.15]] as const) {
    for (const minKeep of [0.05, 0.3]) {
      const plan = globalPlan(spec, full, metric === 'flops' ? { flops: share } : { params: share }, minKeep);
      const widths = allocateGlobal(spec, full, randomScores(3), plan);
      const got = complexity(spec, widths)[metric];
      const limit = share * complexity(spec, full)[metric];
      assert.ok(got <= limit && got >= 0.99 * limit, `${metric} ${share} min-keep ${minKeep}: ${got} of limit ${limit}`);
      widths.forEach((w, g) => assert.ok(w >= Math.ceil(minKeep * full[g]) && w <= full[g], `group ${g}: ${w}`));
    }
  }
  // keep R keeps that share of all channels, exactly.
  const total = full.reduce((a, b) => a + b, 0);
  const kept = allocateGlobal(spec, full, randomScores(4), globalPlan(spec, full, { keep: 0.4 }, 0.05));
  assert.equal(kept.reduce((a, b) => a + b, 0), Math.round(0.4 * total));
  assert.deepEqual(minKeepWidths([16, 20, 64], 0.05), [1, 1, 4]);
});

test('widths follow the scores: a group whose channels matter little loses more than uniform pruning takes', () => {
  // Every group's scores share one shape except group 4, where all but two channels score near zero.
  const scores = full.map((w, g) => Float64Array.from({ length: w }, (_, c) => (g === 4 ? (c < 2 ? 10 : 0.01) : 1 + (c % 3))));
  const plan = globalPlan(spec, full, { flops: 0.5 }, 0.05);
  const widths = allocateGlobal(spec, full, scores, plan);
  const uniform = resolveTarget(spec, full, { flops: 0.5 });
  assert.notDeepEqual(widths, uniform);
  assert.ok(widths[4] < uniform[4], `group 4 keeps ${widths[4]}, uniform ${uniform[4]}`);
  assert.equal(widths[4], plan.floor[4] > 2 ? plan.floor[4] : 2, 'only its two strong channels survive (or its floor)');
  // Scale-free: multiplying one group's scores by 1000 changes nothing, since scores are divided by their group mean.
  const scaled = scores.map((s, g) => (g === 7 ? s.map((v) => v * 1000) : s));
  assert.deepEqual(allocateGlobal(spec, full, scaled, plan), widths);
  // Equal scores everywhere rank by group then channel, and still meet the budget.
  const flat = allocateGlobal(spec, full, full.map((w) => new Float64Array(w).fill(1)), plan);
  assert.ok(complexity(spec, flat).flops <= 0.5 * complexity(spec, full).flops);
});

test('coupled groups: a ResNet stage is one unit, and zero-pad chains get consistent kept channels', () => {
  const map = channelMap(spec);
  for (let seed = 0; seed < 20; seed++) {
    const scores = randomScores(seed);
    const widths = allocateGlobal(spec, full, scores, globalPlan(spec, full, { flops: 0.3 + seed / 50 }, 0.05));
    assert.equal(widths.length, map.groups.length, 'one width per channel group: the coupled convs of a stage share one');
    const kept = chooseKept(map, scores, full, widths);
    assert.deepEqual(kept.map((k) => k.length), widths);
    checkKept(spec, full, kept, map);
  }
});

test('bad budgets: unreachable under --min-keep, --widths with global, a keep out of range', () => {
  const refuse = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof UserError && re.test(e.message), String(re));
  refuse(() => globalPlan(spec, full, { flops: 0.01 }, 0.5), /--flops 0\.01: .* out of reach under --min-keep 0\.5/);
  refuse(() => globalPlan(spec, full, { params: 0.05 }, 0.3), /--params 0\.05: .* out of reach under --min-keep 0\.3/);
  refuse(() => globalPlan(spec, full, { keep: 0.04 }, 0.2), /--keep 0\.04: .* out of reach/);
  refuse(() => globalPlan(spec, full, { widths: full }, 0.05), /--widths fixes every group's width/);
  refuse(() => minKeepWidths(full, 0), /--min-keep must be in \(0, 1\]/);
});

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'prunespace-allocation-'));
const parent = join(root, 'parent');
const tiny = ['--net', 'resnet20', '--input', '8x8x1', '--classes', '3', '--data', 'synthetic', '--synthetic-samples', '96', '--batch', '32', '--backend', 'wasm'];

before(() => {
  const r = cli(['train', ...tiny, '--epochs', '1', '--save', parent]);
  assert.equal(r.code, 0, r.stderr);
});

test('prune --allocation global meets its FLOPs target and records the allocation; bad input writes nothing', () => {
  const out = join(root, 'global');
  const r = cli(['prune', '--parent', parent, '--criterion', 'snip', '--allocation', 'global', '--flops', '0.4', '--score-batches', '2', '--batch', '32', '--backend', 'wasm', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  const limit = 0.4 * complexity(spec, full).flops;
  assert.ok(meta.complexity.flops <= limit && meta.complexity.flops >= 0.99 * limit, `${meta.complexity.flops} of ${limit}`);
  assert.equal(meta.pruned.allocation, 'global');
  assert.equal(meta.pruned.minKeep, 0.05);
  assert.equal(meta.pruned.temperature, 1);
  const cases: [string[], RegExp][] = [
    [['--criterion', 'l1', '--allocation', 'global', '--flops', '0.01', '--min-keep', '0.5'], /out of reach under --min-keep 0\.5/],
    [['--criterion', 'l1', '--allocation', 'global', '--widths', full.join(',')], /--widths fixes every group's width/],
    [['--criterion', 'l1', '--keep', '0.5', '--min-keep', '0.1'], /--min-keep applies to --allocation global only/],
    [['--criterion', 'bogus', '--allocation', 'global', '--flops', '0.5'], /unknown criterion 'bogus'/],
    [['--criterion', 'grasp', '--allocation', 'global', '--flops', '0.5', '--temperature', '0'], /--temperature/],
    [['--criterion', 'grasp', '--allocation', 'global', '--flops', '0.5', '--temperature', '-2'], /--temperature/],
  ];
  for (const [args, message] of cases) {
    const bad = join(root, `bad-${Math.random().toString(36).slice(2)}`);
    const b = cli(['prune', '--parent', parent, ...args, '--out', bad]);
    assert.equal(b.code, 2, `${args.join(' ')}: ${b.stderr}`);
    assert.match(b.stderr, message);
    assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr);
    assert.ok(!existsSync(bad), `${args.join(' ')} wrote nothing`);
  }
});

test('train --prune-at with global allocation prunes iteratively, each step within its budget, the last within 1% of the target', () => {
  const out = join(root, 'early');
  const r = cli(['train', ...tiny, '--epochs', '3', '--prune-at', '1', '--prune-steps', '2', '--criterion', 'l2', '--allocation', 'global', '--params', '0.3', '--measure-flow', '--save', out]);
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  const steps = meta.pruned.during.steps as { widths: number[]; params: number; flow: Record<string, number> }[];
  for (const s of steps) assert.ok(Number.isFinite(s.flow.gradNormBefore) && Number.isFinite(s.flow.lossAfter), '--measure-flow records each step');
  const fullParams = complexity(spec, full).params;
  assert.equal(steps.length, 2);
  assert.ok(steps[0].params > steps[1].params);
  assert.ok(steps[1].params <= 0.3 * fullParams && steps[1].params >= 0.99 * 0.3 * fullParams, `${steps[1].params} of ${0.3 * fullParams}`);
  steps[0].widths.forEach((w, g) => assert.ok(steps[1].widths[g] <= w));
  assert.equal(meta.pruned.allocation, 'global');
  const bad = join(root, 'early-bad');
  const b = cli(['train', ...tiny, '--epochs', '3', '--prune-at', '1', '--criterion', 'l2', '--allocation', 'global', '--flops', '0.001', '--save', bad]);
  assert.equal(b.code, 2, b.stderr);
  assert.match(b.stderr, /out of reach under --min-keep/);
  assert.ok(!existsSync(bad));
});

test('measureFlow records the loss and gradient norm on the scoring batches just before and after a pruning step', async () => {
  const { trainWithPruning } = await import('../src/pruning/during-training.js');
  const { selectEngine } = await import('../src/training/engines/select.js');
  const { tinySettings } = await import('./campaign-helpers.js');
  const { engine } = await selectEngine('wasm');
  const r = await trainWithPruning({
    spec, target: { flops: 0.3 }, allocation: 'global', criterion: 'l2', at: 1, steps: 1, every: 1, combine: 'sum', scoreBatches: 2,
    finetuneEpochs: 0, finetuneLr: 0.01, settings: { ...tinySettings(96, 2), backend: 'wasm' }, seed: 4, engine, measureFlow: true,
  });
  assert.equal(r.status, 'complete', r.error);
  const flow = r.pruneSteps[0].flow!;
  for (const v of Object.values(flow)) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(flow));
  assert.notEqual(flow.lossAfter, flow.lossBefore, 'removing 70% of the FLOPs changes the loss');
  // Without it nothing extra is computed or recorded.
  const plain = await trainWithPruning({
    spec, target: { flops: 0.3 }, criterion: 'l2', at: 1, steps: 1, every: 1, combine: 'sum', scoreBatches: 2,
    finetuneEpochs: 0, finetuneLr: 0.01, settings: { ...tinySettings(96, 2), backend: 'wasm' }, seed: 4, engine,
  });
  assert.equal(plain.pruneSteps[0].flow, undefined);
});
