/** Campaign init modes: inherit from a parent (trained once and cached, or given), distill without labels, host-neutral jobs, bad input. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { runCampaign } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import { JOB_VERSION, makeJob, parseJob, resolveRequest, type JobInit } from '../src/campaign/job.js';
import { PARENT_DIR, SCORES_JSON, prepareInit } from '../src/campaign/parent.js';
import { createRound } from '../src/campaign/rounds.js';
import { openCampaign } from '../src/campaign/store.js';
import type { CampaignInit } from '../src/campaign/types.js';
import { channelMap } from '../src/nets/channels.js';
import { buildNet } from '../src/nets/registry.js';
import { baseWidths } from '../src/nets/resolve.js';
import type { ParentScores } from '../src/pruning/parent-scores.js';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { makeSynthetic } from '../src/training/data/synthetic.js';
import { readLayersWeights } from '../src/training/engines/layers-weights.js';
import { inheritedWeights } from '../src/training/inherit.js';
import { loadTrained } from '../src/training/save.js';
import { runTrial } from '../src/training/trial.js';
import { cli, TINY_SPACE, tempDir, tinyFlags, tinySettings, writeTinySpace } from './campaign-helpers.js';

const quiet = { progress: { quiet: true } };

function readStore(dir: string) {
  const r = openCampaign(dir, { readonly: true });
  try {
    return { config: r.config(), trials: r.trials(), inits: r.trialInits() as Map<number, JobInit> };
  } finally {
    r.close();
  }
}

/** Indices of the k highest scores, ties to the lower index, ascending: what "the criterion's top-k" means. */
function topK(scores: number[], k: number): number[] {
  return scores.map((s, i) => [s, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i).sort((a, b) => a - b);
}

const mtimes = (dir: string) => ['model.json', 'weights.bin', 'prunespace.json', SCORES_JSON].map((f) => statSync(join(dir, PARENT_DIR, f)).mtimeMs);

test('inherit with a parent the campaign trains: trained and scored once, kept channels are the top scores, resume reuses both', { timeout: 120_000 }, async () => {
  const root = tempDir('init-auto');
  const spacePath = writeTinySpace(root);
  const init: CampaignInit = { mode: 'inherit', criterion: 'l1', combine: 'sum', parentEpochs: 1 };
  const { dir } = prepareCampaign({ spacePath, outDir: join(root, 'run'), samples: 3, seed: 1, settings: tinySettings(), maxAttempts: 1, saveModels: true, init });
  await runCampaign(dir, { ...quiet, workers: 1 });
  const first = readStore(dir);
  assert.deepEqual(first.config.init, init);
  assert.ok(first.trials.every((t) => t.state === 'complete'), JSON.stringify(first.trials.map((t) => t.error)));
  const parent = JSON.parse(readFileSync(join(dir, PARENT_DIR, 'prunespace.json'), 'utf8'));
  const spec = buildNet(first.config.net);
  assert.deepEqual(parent.widths, baseWidths(spec), 'the parent is the full network');
  const scores = JSON.parse(readFileSync(join(dir, PARENT_DIR, SCORES_JSON), 'utf8')) as ParentScores;
  assert.equal(scores.criterion, 'l1');
  assert.deepEqual(scores.scores.map((s) => s.length), parent.widths);

  // Groups outside zero-pad chains keep exactly their top scores; chained groups share their prefixes (the shortcut needs it).
  const map = channelMap(spec);
  const chained = new Set(map.zeroPad.flatMap((z) => [z.from, z.to]));
  assert.ok(chained.size > 0 && chained.size < spec.groups.length, 'the tiny resnet has both kinds of groups');
  for (const t of first.trials) {
    const init = first.inits.get(t.index);
    assert.ok(init && init.mode === 'inherit', `trial ${t.index} has its init recorded`);
    assert.equal(init.parent, PARENT_DIR);
    assert.deepEqual(init.kept.map((k) => k.length), t.widths);
    t.widths.forEach((w, g) => {
      if (!chained.has(g)) assert.deepEqual(init.kept[g], topK(scores.scores[g], w), `trial ${t.index} group ${spec.groups[g].name}`);
    });
    for (const { from, to } of map.zeroPad) {
      const m = Math.min(t.widths[from], t.widths[to]);
      assert.deepEqual(init.kept[from].slice(0, m), init.kept[to].slice(0, m));
    }
    // The saved model says the same.
    const meta = JSON.parse(readFileSync(join(dir, 'models', `trial-${t.index}`, 'prunespace.json'), 'utf8'));
    assert.deepEqual(meta.pruned.kept, init.kept);
    assert.equal(meta.pruned.criterion, 'l1');
  }
  const before = mtimes(dir);

  // A later round (as resume runs one) trains new trials from the cached parent and scores, never retraining them.
  const spaceAgain = loadSpace(spacePath);
  const store = openCampaign(dir);
  createRound(store, 1, { space: spaceAgain.file, compiled: compileSpace(spaceAgain) }, 2, () => {});
  store.close();
  await runCampaign(dir, { ...quiet, workers: 1 });
  assert.deepEqual(mtimes(dir), before, 'parent and scores untouched');
  const second = readStore(dir);
  assert.equal(second.trials.filter((t) => t.state === 'complete').length, 5);
  for (const t of second.trials.filter((x) => x.round === 1)) {
    const init = second.inits.get(t.index) as Extract<JobInit, { mode: 'inherit' }>;
    t.widths.forEach((w, g) => {
      if (!chained.has(g)) assert.deepEqual(init.kept[g], topK(scores.scores[g], w));
    });
  }

  // At the parent's own widths the job keeps every channel in order, and the worker's start is the parent's exact weights.
  const plan = await prepareInit(dir, second.config, () => {});
  const full = baseWidths(spec);
  const job = parseJob(JSON.parse(JSON.stringify(makeJob(second.config, { index: 99, widths: full, seed: 5 }, { index: 99, round: 0, attempt: 1, token: 't' }, plan.initFor(full)))));
  const request = resolveRequest(job, { runDir: dir });
  assert.ok(request.init?.mode === 'inherit');
  assert.deepEqual(request.init.kept, full.map((w) => Array.from({ length: w }, (_, i) => i)));
  assert.equal(request.init.parent, join(dir, PARENT_DIR));
  const start = await inheritedWeights(spec, full, request.init.parent, request.init.kept);
  const { model } = await loadTrained(join(dir, PARENT_DIR));
  const exact = readLayersWeights(model, spec);
  model.dispose();
  assert.equal(start.size, exact.size);
  for (const [name, t] of exact) assert.deepEqual(start.get(name)!.data, t.data, name);
});

test('host-neutral jobs: the parent is named inside the run directory, kept indices must fit the widths, old job versions are refused', () => {
  const widths = [2, 1];
  const base = { v: JOB_VERSION, campaign: 'abcdef012345', name: 'run', round: 0, index: 0, attempt: 1, token: 't', net: { family: 'resnet20' }, widths, seed: 1, settings: { data: { name: 'synthetic' }, backend: 'wasm', epochs: 1 } };
  const ok = parseJob({ ...base, init: { mode: 'inherit', parent: 'parent', criterion: 'l1', kept: [[0, 3], [1]] } });
  const resolved = resolveRequest(ok, { runDir: '/srv/runs/run' }).init;
  assert.ok(resolved?.mode === 'inherit');
  assert.equal(resolved.parent, '/srv/runs/run/parent');
  assert.deepEqual(resolved.kept, [[0, 3], [1]]);
  const bad: [unknown, RegExp][] = [
    [{ ...base, init: { mode: 'inherit', parent: '../elsewhere', criterion: 'l1', kept: [[0, 3], [1]] } }, /init\.parent: a path relative to the run directory/],
    [{ ...base, init: { mode: 'inherit', parent: '/abs/parent', criterion: 'l1', kept: [[0, 3], [1]] } }, /init\.parent/],
    [{ ...base, init: { mode: 'inherit', parent: 'parent', criterion: 'l1', kept: [[0], [1]] } }, /init\.kept\.0: keeps 1 channels, the width is 2/],
    [{ ...base, init: { mode: 'inherit', parent: 'parent', criterion: 'l1', kept: [[0, 1]] } }, /init\.kept: 1 groups of kept indices for 2 widths/],
    [{ ...base, init: { mode: 'distill', parent: 'parent', students: 0 } }, /init\.students/],
    [{ ...base, init: { mode: 'distill', parent: 'parent', students: 1, kept: [] } }, /init/],
    [{ ...base, v: 1 }, /not a prunespace trial job \(v: /],
  ];
  for (const [payload, pattern] of bad) assert.throws(() => parseJob(payload), pattern);
  const distill = parseJob({ ...base, init: { mode: 'distill', parent: 'parent', students: 2 } });
  assert.throws(() => resolveRequest(distill, {}), /no run directory/);
});

/** Trains a small resnet20 parent (input 8x8x1) and saves it. */
async function trainParent(dir: string, classes: number, data = tinySettings().data): Promise<string> {
  const net = { ...TINY_SPACE.network, input: [8, 8, 1] as [number, number, number], classes };
  const spec = buildNet(net);
  const r = await runTrial({ net: spec.ref, widths: baseWidths(spec), settings: { ...tinySettings(), data }, seed: 3, saveDir: dir });
  assert.equal(r.status, 'complete', r.error);
  return dir;
}

test('inherit from a given parent: it is copied into the run directory and scored there; status names it', { timeout: 120_000 }, async () => {
  const root = tempDir('init-given');
  const parent = await trainParent(join(root, 'given'), 3);
  const out = join(root, 'run');
  const r = cli(['search', writeTinySpace(root), '--out', out, '--samples', '2', '--workers', '1', ...tinyFlags(), '--init', 'inherit', '--parent', parent, '--criterion', 'l2', '--combine', 'max', '--reference-seeds', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /parent: copied .* into parent\//);
  assert.doesNotMatch(r.stderr, /parent: training/);
  assert.deepEqual(readFileSync(join(out, PARENT_DIR, 'weights.bin')), readFileSync(join(parent, 'weights.bin')));
  const s = readStore(out);
  assert.deepEqual(s.config.init, { mode: 'inherit', parent, criterion: 'l2', combine: 'max' });
  // The uniform reference inherits like the candidates, so the comparison is at the same init.
  assert.equal(s.inits.size, 3);
  const scores = JSON.parse(readFileSync(join(out, PARENT_DIR, SCORES_JSON), 'utf8')) as ParentScores;
  assert.equal(scores.criterion, 'l2');
  assert.equal(scores.combine, 'max');
  const st = cli(['status', out]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`^init: inherit from parent ${parent} \\(copied into parent/\\): the top channels by l2 \\(max`, 'm'));
  const json = JSON.parse(cli(['status', out, '--json']).stdout);
  assert.equal(json.init.mode, 'inherit');
});

test('inherit scoring settings: --score-batches, --temperature and --bn-train reach the parent scores and are recorded', { timeout: 120_000 }, async () => {
  const root = tempDir('init-scoring');
  const parent = await trainParent(join(root, 'given'), 3);
  const out = join(root, 'run');
  const r = cli(['search', writeTinySpace(root), '--out', out, '--samples', '1', '--workers', '1', ...tinyFlags(), '--no-reference',
    '--init', 'inherit', '--parent', parent, '--criterion', 'snip', '--score-batches', '1', '--temperature', '3', '--bn-train']);
  assert.equal(r.status, 0, r.stderr);
  const s = readStore(out);
  assert.deepEqual(s.config.init, { mode: 'inherit', parent, criterion: 'snip', combine: 'sum', scoring: { scoreBatches: 1, temperature: 3, bnTrain: true } });
  const scores = JSON.parse(readFileSync(join(out, PARENT_DIR, SCORES_JSON), 'utf8')) as ParentScores;
  assert.deepEqual([scores.scoreBatches, scores.temperature, scores.bnTrain], [1, 3, true]);
  // grasp without a temperature is scored at its own T = 200.
  const g = cli(['search', writeTinySpace(root), '--out', join(root, 'grasp'), '--samples', '1', '--workers', '1', ...tinyFlags(), '--no-reference',
    '--init', 'inherit', '--parent', parent, '--criterion', 'grasp', '--score-batches', '1']);
  assert.equal(g.status, 0, g.stderr);
  assert.equal((JSON.parse(readFileSync(join(root, 'grasp', PARENT_DIR, SCORES_JSON), 'utf8')) as ParentScores).temperature, 200);
});

/** Images of the synthetic set written as Fashion-MNIST IDX files (8x8, 10 classes); `relabel` rewrites every label. */
function idxDir(dir: string, relabel?: (label: number, i: number) => number): string {
  mkdirSync(dir, { recursive: true });
  const raw = makeSynthetic({ shape: [8, 8, 1], classes: 10, samples: 160 });
  const idx = (dims: number[], data: Uint8Array) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt32BE(0x0800 | dims.length, 0);
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return gzipSync(Buffer.concat([head, Buffer.from(data)]));
  };
  const labels = (l: Uint8Array) => (relabel ? l.map((x, i) => relabel(x, i)) : l);
  for (const [prefix, set] of [['train', raw.train], ['t10k', raw.test]] as const) {
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), idx([set.count, 8, 8], set.images));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), idx([set.count], labels(set.labels)));
  }
  return dir;
}

test('distill campaign: trials distil the parent to their widths; scrambled labels give identical students', { timeout: 180_000 }, async () => {
  const root = tempDir('init-distill');
  const real = idxDir(join(root, 'real'));
  const scrambled = idxDir(join(root, 'scrambled'), (l, i) => (l * 7 + i * 13 + 1) % 10);
  assert.notDeepEqual(readFileSync(join(real, 'train-labels-idx1-ubyte.gz')), readFileSync(join(scrambled, 'train-labels-idx1-ubyte.gz')));
  const parent = await trainParent(join(root, 'parent'), 10, { name: 'fashion-mnist', dir: real, augment: false });
  const spacePath = writeTinySpace(root, { network: { ...TINY_SPACE.network, classes: 10 } });
  const init: CampaignInit = { mode: 'distill', parent, students: 1, rankOn: 'agreement', options: { reselectEvery: 3, bnBatches: 2, lambdaFeatures: 0.5 } };
  const run = async (name: string, dataDir: string) => {
    const settings = { ...tinySettings(), data: { name: 'fashion-mnist' as const, dir: dataDir, augment: false } };
    const { dir } = prepareCampaign({ spacePath, outDir: join(root, name), samples: 2, seed: 4, settings, maxAttempts: 1, saveModels: true, init });
    await runCampaign(dir, { ...quiet, workers: 1 });
    return { dir, ...readStore(dir) };
  };
  const a = await run('a', real);
  const b = await run('b', scrambled);
  assert.deepEqual(a.config.init, init);
  for (const x of [a, b]) assert.ok(x.trials.every((t) => t.state === 'complete'), JSON.stringify(x.trials.map((t) => t.error)));
  assert.deepEqual(a.trials.map((t) => t.widths), b.trials.map((t) => t.widths));
  for (const [i, t] of a.trials.entries()) {
    const u = b.trials[i];
    assert.deepEqual(a.inits.get(t.index), { mode: 'distill', parent: PARENT_DIR, students: 1, rankOn: 'agreement', options: init.options });
    const meta = JSON.parse(readFileSync(join(a.dir, 'models', `trial-${t.index}`, 'prunespace.json'), 'utf8'));
    assert.equal(meta.method, 'distill');
    // The campaign's distillation settings reached the trial.
    assert.equal(meta.settings.reselectEvery, 3);
    assert.equal(meta.settings.bnBatches, 2);
    assert.equal(meta.settings.weights.features, 0.5);
    // Ranked on teacher agreement, no label read: the same with scrambled labels, while the labelled error (a side metric) differs.
    assert.equal(t.metrics?.rankedOn, 'agreement');
    assert.equal(t.valError, t.metrics?.valDisagreement);
    assert.equal(t.valError, u.valError);
    assert.ok(typeof t.metrics?.valErrorLabelled === 'number' && typeof u.metrics?.valErrorLabelled === 'number');
    assert.ok(typeof t.metrics?.valDistill === 'number' && t.metrics.valDistill >= 0);
    // The store keeps the real widths of the saved subnetwork beside the sampled ones.
    assert.deepEqual(t.metrics?.widths, meta.widths);
    // The sampled widths are the sparsity target; a channel a zero-pad shortcut still feeds stays, so a group may keep more.
    meta.widths.forEach((w: number, g: number) => assert.ok(w >= t.widths[g], `group ${g}: ${w} for target ${t.widths[g]}`));
    assert.ok(meta.widths.reduce((a: number, b: number) => a + b, 0) < t.widths.reduce((a, b) => a + b, 0) * 1.5, 'close to the target');
    // Training never read a label: the label-free losses and the students' weights are the same.
    assert.deepEqual(t.curves.map((c) => [c.trainLoss, c.valLoss]), u.curves.map((c) => [c.trainLoss, c.valLoss]));
    assert.deepEqual(readFileSync(join(a.dir, 'models', `trial-${t.index}`, 'weights.bin')), readFileSync(join(b.dir, 'models', `trial-${u.index}`, 'weights.bin')));
    assert.ok(t.valError !== null && t.valError >= 0 && t.valError <= 1, 'validation error is still evaluated');
  }
  assert.notDeepEqual(a.trials.map((t) => t.metrics?.valErrorLabelled), b.trials.map((t) => t.metrics?.valErrorLabelled), 'labelled errors read the scrambled labels');
  // trials.csv names what val_error holds and keeps the labelled error beside it.
  const csv = readFileSync(join(a.dir, 'trials.csv'), 'utf8').split('\n')[0];
  for (const column of ['ranked_on', 'val_error_labelled', 'val_disagreement', 'val_distill', 'real_widths']) assert.ok(csv.split(',').includes(column), column);
});

test('bad init input: one line, exit code 2, nothing written', { timeout: 180_000 }, async () => {
  const root = tempDir('init-bad');
  const space = writeTinySpace(root);
  const notModel = join(root, 'not-a-model');
  mkdirSync(notModel);
  writeFileSync(join(notModel, 'notes.txt'), 'hello');
  const otherNet = await trainParent(join(root, 'four-classes'), 4);
  // A parent at 20% width cannot give the space's widths of up to 40%.
  const spec = buildNet({ ...TINY_SPACE.network, input: [8, 8, 1], classes: 3 });
  const narrow = join(root, 'narrow');
  const nr = await runTrial({ net: spec.ref, widths: spec.groups.map((g) => Math.max(1, Math.round(0.2 * g.base))), settings: tinySettings(), seed: 3, saveDir: narrow });
  assert.equal(nr.status, 'complete', nr.error);
  const out = join(root, 'never');
  const bad = (extra: string[], pattern: RegExp, spacePath = space) => {
    const r = cli(['search', spacePath, '--out', out, '--samples', '2', ...tinyFlags(), ...extra]);
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), `${extra.join(' ')} wrote ${out}`);
  };
  bad(['--init', 'inherit', '--parent', notModel], /--parent .*not-a-model: not a prunespace model directory/);
  bad(['--init', 'inherit', '--criterion', 'nope'], /unknown criterion 'nope' \(known: l1, l2, snip,/);
  bad(['--train', 'distill'], /--train distill needs --parent DIR/);
  bad(['--criterion', 'l1'], /--criterion \(init\.criterion\) applies to --init inherit only/);
  bad(['--init', 'inherit', '--parent', otherNet], /--parent .*four-classes is a resnet20 on 8x8x1 with 4 classes.*the space samples a resnet20 on 8x8x1 with 3 classes/);
  bad(['--train', 'distill', '--parent', otherNet, '--students', '0'], /--students expects an integer >= 1/);
  bad(['--parent', otherNet], /--parent \(init\.parent\) needs --init inherit or --train distill/);
  bad(['--init', 'inherit', '--parent', otherNet, '--parent-epochs', '2'], /--parent-epochs .* applies to --init inherit without --parent/);
  bad(['--train', 'distill', '--init', 'inherit', '--parent', otherNet], /leave out --init inherit/);
  bad(['--train', 'distill', '--parent', narrow], /--parent .*narrow: group stage1 has 3 channels, the space samples up to 6/);
  bad(['--rank-on', 'agreement'], /--rank-on \(train\.rankOn\) applies to --train distill only/);
  bad(['--lambda-logits', '2'], /--lambda-logits \(train\.lambdaLogits\) applies to --train distill only/);
  bad(['--init', 'inherit', '--parent', otherNet, '--reselect-every', '5'], /--reselect-every .* applies to --train distill only/);
  bad(['--score-batches', '2'], /--score-batches \(init\.scoreBatches\) applies to --init inherit only/);
  bad(['--temperature', '2'], /--temperature applies to --init inherit \(scoring\) or --train distill/);
  bad(['--init', 'inherit', '--temperature', '0'], /--temperature/);
  bad(['--train', 'distill', '--parent', otherNet, '--rank-on', 'votes'], /--rank-on/);
});

test('campaign files: an init section and train.mode, validated in one line, stored, and diffed against a later request', { timeout: 120_000 }, async () => {
  const root = tempDir('init-file');
  writeTinySpace(root);
  await trainParent(join(root, 'given'), 3);
  const file = (name: string, patch: Record<string, unknown>, train: Record<string, unknown> = {}) => {
    const path = join(root, `${name}.json`);
    writeFileSync(path, JSON.stringify({
      name, space: 'tiny.json', samples: 1,
      train: { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, lr: 0.05, augment: false, ...train },
      launch: { backend: 'wasm', workers: 1 }, ...patch,
    }));
    return path;
  };
  const bad = (path: string, pattern: RegExp) => {
    const r = cli(['search', '--config', path, '--out', join(root, 'never')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  };
  bad(file('b1', { init: { mode: 'inherit', criterion: 'nope' } }), /b1\.json: init\.criterion: .*l1.*snip/);
  bad(file('b2', { init: { mode: 'clone' } }), /b2\.json: init\.mode: .*scratch.*inherit/);
  bad(file('b3', {}, { mode: 'distill' }), /--train distill needs --parent DIR \(init\.parent\)/);
  bad(file('b4', { init: { parent: 'given' } }, { mode: 'distill', students: 0 }), /b4\.json: train\.students: /);
  bad(file('b5', { init: { mode: 'inherit', parent: 'missing' } }), /--parent .*missing: not a prunespace model directory/);
  assert.ok(!existsSync(join(root, 'never')));

  // The parent path is relative to the campaign file; the effective init is stored with its defaults filled in.
  const ok = file('inh', { init: { mode: 'inherit', parent: 'given' } });
  const out = join(root, 'run');
  const r = cli(['search', '--config', ok, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const stored = JSON.parse(readFileSync(join(out, 'campaign.json'), 'utf8'));
  assert.deepEqual(stored.init, { mode: 'inherit', parent: join(root, 'given'), criterion: 'l1', combine: 'sum' });
  assert.deepEqual(readStore(out).config.init, stored.init);
  const again = cli(['search', '--config', ok, '--out', out, '--criterion', 'l2']);
  assert.equal(again.status, 2, again.stderr);
  assert.match(again.stderr, /campaign\.json: init\.criterion: stored "l1", requested "l2"/);
  assert.match(again.stderr, /holds a different campaign \(1 difference/);
  // Flags alone give the same campaign as the file: no difference.
  const same = cli(['search', join(root, 'tiny.json'), '--out', out, '--samples', '1', ...tinyFlags(), '--workers', '1', '--init', 'inherit', '--parent', join(root, 'given')]);
  assert.equal(same.status, 0, same.stderr);
  assert.match(same.stderr, /already holds this campaign/);
});

test('reports label compared campaigns by their init mode, read from the stored config only', async () => {
  const { initLabel } = await import('../src/analysis/campaign.js');
  const { writeReport } = await import('../src/analysis/report/write.js');
  const { syntheticCampaign } = await import('./analysis-fixtures.js');
  assert.equal(initLabel({}), 'scratch');
  assert.equal(initLabel({ init: { mode: 'inherit', criterion: 'snip', combine: 'sum' } }), 'inherit snip');
  assert.equal(initLabel({ init: { mode: 'inherit', criterion: 'l1', combine: 'max' } }), 'inherit l1/max');
  assert.equal(initLabel({ init: { mode: 'distill', parent: '/p', students: 2 } }), 'distill');
  const a = syntheticCampaign({ n: 30, seed: 1 });
  const b = syntheticCampaign({ n: 30, seed: 2 });
  const dir = tempDir('init-report');
  await writeReport({ name: 'same', net: a.config.net, seed: 1, trials: a.trials, init: 'scratch' }, dir, {
    compare: [{ name: 'same', net: b.config.net, seed: 1, trials: b.trials, init: 'inherit l1' }],
  });
  const rows = readFileSync(join(dir, 'populations.csv'), 'utf8').trim().split('\n');
  assert.match(rows[0], /^population,.*,init$/);
  assert.match(rows[1], /^same \[scratch\],.*,scratch$/);
  assert.match(rows[2], /^same \[inherit l1\],.*,inherit l1$/);
  assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /<b>same<\/b> \(inherit l1\)/);
});
