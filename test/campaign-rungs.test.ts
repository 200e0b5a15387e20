/**
 * Multi-fidelity campaigns: the rung scheduler (sync and ASHA), promotions independent of worker count, finalists
 * paired with the reference seed for seed, the budget account, kill -9 mid-rung, and bad rungs input.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCampaign } from '../src/campaign/campaign.js';
import { checkRungs, prepareCampaign } from '../src/campaign/create.js';
import { budgetAccount, plannedRungSizes, rungDecisions } from '../src/campaign/rungs.js';
import { makeJob, parseJob, resolveRequest } from '../src/campaign/job.js';
import { trialRow } from '../src/campaign/export.js';
import { openCampaign } from '../src/campaign/store.js';
import { epochsDone } from '../src/campaign/progress.js';
import type { RungsPlan, TrialRecord } from '../src/campaign/types.js';
import { cli, cliProcess, exited, tempDir, tinyFlags, tinySettings, trials, waitFor, writeTinySpace } from './campaign-helpers.js';

const quiet = { progress: { quiet: true } };
const plan = (p: Partial<RungsPlan> = {}): RungsPlan => ({ rungs: 2, eta: 2, mode: 'sync', finalists: 0, finalistSeeds: 2, ...p });

/** A candidate record at `rung` in `state`, with validation errors for the rungs it finished. */
function candidate(index: number, state: TrialRecord['state'], rung: number, errors: number[]): TrialRecord {
  return {
    index, round: 0, role: 'sample', widths: [index], seed: index, complexity: { flops: 1, params: 1, activations: 1 }, state, attempts: 1,
    valError: errors.at(-1) ?? null, testError: null, trainLoss: null, curves: [], wallSeconds: 1, imagesPerSecond: null, backend: 'wasm',
    worker: null, error: null, startedAt: null, finishedAt: null, rung,
    rungResults: errors.map((valError, r) => ({ rung: r, epochs: 2 ** r, valError, testError: null, trainLoss: null, images: 100 * 2 ** r })),
  };
}

test('sync: nothing is decided while a candidate is still in the rung; then the best ceil(n/eta) continue, ties by index', () => {
  const open = [candidate(0, 'paused', 0, [0.3]), candidate(1, 'running', 0, []), candidate(2, 'paused', 0, [0.2])];
  assert.deepEqual(rungDecisions(plan(), open, 2), { promote: [], prune: [], finalists: [] });
  // A failed candidate with attempts left may still finish the rung; with none left it is out of it.
  const failed = [candidate(0, 'paused', 0, [0.3]), candidate(1, 'failed', 0, []), candidate(2, 'paused', 0, [0.2])];
  assert.deepEqual(rungDecisions(plan(), failed, 2).promote, []);
  assert.deepEqual(rungDecisions(plan(), failed, 1), { promote: [2], prune: [0], finalists: [] });
  const ties = [0.3, 0.2, 0.3, 0.2, 0.5].map((e, i) => candidate(i, 'paused', 0, [e]));
  assert.deepEqual(rungDecisions(plan(), ties, 2), { promote: [1, 3, 0], prune: [2, 4], finalists: [] });
});

test('async (ASHA): a candidate in the top floor(n/eta) of those done is promoted before the rung is complete', () => {
  const some = [candidate(0, 'paused', 0, [0.3]), candidate(1, 'paused', 0, [0.1]), candidate(2, 'running', 0, []), candidate(3, 'waiting', 0, [])];
  assert.deepEqual(rungDecisions(plan({ mode: 'async' }), some, 2), { promote: [1], prune: [], finalists: [] });
  assert.deepEqual(rungDecisions(plan({ mode: 'sync' }), some, 2).promote, []);
});

test('finalists: once the top rung is decided, the best F of it get K seeds each, once', () => {
  const top = [candidate(0, 'pruned', 0, [0.5]), candidate(1, 'complete', 1, [0.2, 0.15]), candidate(2, 'complete', 1, [0.3, 0.1]), candidate(3, 'pruned', 0, [0.6])];
  const d = rungDecisions(plan({ finalists: 1 }), top, 2);
  assert.deepEqual(d.finalists, [{ round: 0, finalistOf: 2, seedIndex: 0 }, { round: 0, finalistOf: 2, seedIndex: 1 }]);
  const made = { ...candidate(4, 'waiting', 1, []), role: 'finalist' as const, finalistOf: 2, seedIndex: 0 };
  assert.deepEqual(rungDecisions(plan({ finalists: 1 }), [...top, made], 2).finalists, []);
  // A paused candidate below the top keeps the top rung open.
  assert.deepEqual(rungDecisions(plan({ finalists: 1, rungs: 3 }), [candidate(0, 'paused', 1, [0.1, 0.1]), candidate(1, 'complete', 2, [0.2, 0.2, 0.2])], 2).finalists, []);
});

test('budget account: images per rung against a flat campaign at the final fidelity', () => {
  const ts = [candidate(0, 'pruned', 0, [0.5]), candidate(1, 'complete', 1, [0.2, 0.15]), candidate(2, 'pruned', 0, [0.4]), candidate(3, 'pruned', 0, [0.6])];
  const b = budgetAccount(ts, { rungs: 2, eta: 2 });
  assert.deepEqual(b.rungs, [{ rung: 0, trials: 4, images: 400 }, { rung: 1, trials: 1, images: 200 }]);
  assert.equal(b.fullRunImages, 300);
  assert.equal(b.measured, true);
  assert.equal(b.flatImages, 1200);
  assert.equal(b.share, 0.5);
  assert.deepEqual(plannedRungSizes(48, { rungs: 3, eta: 3 }), [48, 16, 6]);
});

/** 6 candidates, 2 rungs at eta 2 over 2 epochs of 96 synthetic images (86 train: 2 steps an epoch, stops 2 and 4). */
function rungCampaign(label: string, over: Partial<RungsPlan> = {}): string {
  const dir = tempDir(label);
  return prepareCampaign({
    spacePath: writeTinySpace(dir), outDir: join(dir, 'run'), samples: 6, seed: 3, settings: tinySettings(96, 2), maxAttempts: 2,
    referenceSeeds: 2, rungs: plan({ finalists: 1, ...over }),
  }).dir;
}

test('a rung campaign: promotions, rung results, finalists and the reference are the same on 1 and 2 workers', async () => {
  const one = rungCampaign('rungs-w1');
  const two = rungCampaign('rungs-w2');
  await runCampaign(one, { ...quiet, workers: 1 });
  await runCampaign(two, { ...quiet, workers: 2 });
  const [a, b] = [trials(one), trials(two)];
  const key = (t: TrialRecord) => ({ index: t.index, role: t.role, state: t.state, rung: t.rung, seed: t.seed, finalistOf: t.finalistOf, seedIndex: t.seedIndex, rungResults: t.rungResults });
  assert.deepEqual(a.map(key), b.map(key));
  const candidates = a.filter((t) => t.role === 'sample');
  assert.deepEqual(candidates.map((t) => t.state).sort(), ['complete', 'complete', 'complete', 'pruned', 'pruned', 'pruned']);
  for (const t of candidates) {
    assert.equal(t.rungResults[0].images, 2 * 32, 'rung 0 trains the first 2 of the 4 steps');
    if (t.state === 'complete') assert.deepEqual(t.rungResults.map((r) => [r.rung, r.images, r.epochs]), [[0, 64, 1], [1, 64, 2]]);
    else assert.equal(t.rungResults.length, 1);
  }
  const worstPromoted = Math.max(...candidates.filter((t) => t.state === 'complete').map((t) => t.rungResults[0].valError));
  const bestPruned = Math.min(...candidates.filter((t) => t.state === 'pruned').map((t) => t.rungResults[0].valError));
  assert.ok(worstPromoted <= bestPruned, 'the promoted are the best of rung 0');
  const reference = a.filter((t) => t.role === 'reference');
  // Trained in one go, the reference seeds also report rung 0 (their first 2 steps): seed noise at every rung.
  assert.deepEqual(reference.map((t) => [t.seedIndex, t.rung, t.rungResults.map((r) => [r.rung, r.images, r.epochs])]), [[0, 1, [[0, 64, 1], [1, 64, 2]]], [1, 1, [[0, 64, 1], [1, 64, 2]]]]);
  assert.ok(reference.every((t) => t.rungResults[1].valError === t.valError && Number.isFinite(t.rungResults[0].valError)));
  const finalists = a.filter((t) => t.role === 'finalist');
  const best = candidates.filter((t) => t.state === 'complete').sort((x, y) => x.rungResults[1].valError - y.rungResults[1].valError || x.index - y.index)[0];
  assert.deepEqual(finalists.map((t) => [t.finalistOf, t.seedIndex, t.state]), [[best.index, 0, 'complete'], [best.index, 1, 'complete']]);
  assert.deepEqual(finalists.map((t) => t.seed), reference.map((t) => t.seed), 'finalist seed k is the reference seed k');
  assert.deepEqual(finalists[0].widths, best.widths);
  assert.deepEqual(finalists[0].rungResults.map((r) => [r.rung, r.images]), [[0, 64], [1, 64]], 'finalists train the whole final budget from scratch, reporting rung 0 on the way');
  assert.ok(!existsSync(join(one, 'checkpoints')) || candidates.every((t) => !existsSync(join(one, 'checkpoints', `trial-${t.index}`))), 'done candidates leave no checkpoint');
  const account = budgetAccount(a, plan());
  assert.deepEqual(account.rungs.map((r) => [r.trials, r.images]), [[6, 384], [3, 192]]);
  assert.equal(account.flatImages, 6 * 128);
  const status = cli(['status', one]);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /rung 0: 6 trained, 384 images; rung 1: 3 trained, 192 images/);
  assert.match(status.stdout, /75\.0% of a flat campaign/);
  // The fidelity section: seed noise at both rungs from the reference's and the finalist's two seeds each.
  assert.match(status.stdout, /\nfidelity \(population statistics use rung 0\):\n  seed sd: rung 0 \d+\.\d+ points \(df 2\), rung 1 \d+\.\d+ points \(df 2\), pooled within configuration over 2 configuration/, status.stdout);
  assert.match(status.stdout, /\n  structure share of rung-0 variance: (\d+% \(95% F interval \d+%–\d+%; population sd \d+\.\d+ points over 6 candidates\)|not measured)/);
  assert.match(status.stdout, /\n  rung 0 vs rung 1 (over the 3 promoted: Spearman ρ -?\d\.\d\d|: no rank correlation over the 3 promoted)/);
  const json = JSON.parse(cli(['status', one, '--json']).stdout) as { fidelity: { seedNoise: { rung0: { df: number; seeds: number } }; ranking: { n: number }; structure: { populationN: number } } };
  assert.deepEqual([json.fidelity.seedNoise.rung0.df, json.fidelity.seedNoise.rung0.seeds, json.fidelity.ranking.n, json.fidelity.structure.populationN], [2, 4, 3, 6]);
  const report = cli(['report', one, '--out', join(one, 'report')]);
  assert.equal(report.status, 0, report.stderr);
  const html = readFileSync(join(one, 'report', 'report.html'), 'utf8');
  assert.match(html, /<h2>Fidelity: can rung 0 rank the candidates\?<\/h2>\n<p>Population statistics \(error distributions, ratio, profiles, refinement\) use rung 0/);
  assert.match(html, /<li>seed sd: rung 0 \d+\.\d+ points \(df 2\), rung 1/);
});

test('jobs: reference seeds and finalists of a rung campaign ask for the lower rungs through the payload; candidates train in rungs', () => {
  const dir = rungCampaign('rungs-jobs');
  const store = openCampaign(dir, { readonly: true });
  const config = store.config();
  store.close();
  const attempt = { index: 3, round: 0, attempt: 1, token: '1.abc' };
  const job = (role: TrialRecord['role']) => parseJob(JSON.parse(JSON.stringify(makeJob(config, { index: 3, widths: [1, 2], seed: 5, role, rung: 1 }, attempt))));
  for (const role of ['reference', 'finalist'] as const) {
    const j = job(role);
    assert.deepEqual([j.evalRungs, j.rung], [{ rungs: 2, eta: 2 }, undefined]);
    assert.deepEqual(resolveRequest(j, { runDir: dir }).evalRungs, { rungs: 2, eta: 2 });
  }
  const sample = job('sample');
  assert.equal(sample.evalRungs, undefined);
  assert.equal(sample.rung?.rung, 1);
  assert.throws(() => parseJob({ ...job('reference'), evalRungs: { rungs: 1, eta: 2 } }), /not a prunespace trial job \(evalRungs\.rungs/);
});

test('an async (ASHA) rung campaign runs to the end: no candidate is left paused, the top rung holds at least ceil(n/eta)', async () => {
  const dir = rungCampaign('rungs-async', { mode: 'async', finalists: 0 });
  await runCampaign(dir, { ...quiet, workers: 2 });
  const candidates = trials(dir).filter((t) => t.role === 'sample');
  assert.equal(candidates.filter((t) => t.state === 'paused' || t.state === 'waiting').length, 0);
  const top = candidates.filter((t) => t.state === 'complete');
  assert.ok(top.length >= 3 && top.every((t) => t.rungResults.length === 2), `${top.length} reached the top rung`);
  assert.equal(top.length + candidates.filter((t) => t.state === 'pruned').length, 6);
});

test('kill -9 in the middle of a rung: resume keeps every finished rung and retrains none of them', async () => {
  const dir = tempDir('rungs-kill9');
  const space = writeTinySpace(dir);
  const out = join(dir, 'run');
  const child = cliProcess(['search', space, '--samples', '6', '--workers', '1', '--out', out, '--no-reference', ...tinyFlags(192, 4), '--rungs', '2', '--eta', '2']);
  const inRung1 = () => trials(out).find((t) => t.rung === 1 && t.state === 'running');
  await waitFor(() => existsSync(join(out, 'campaign.db')) && inRung1(), 120_000, 50);
  child.kill('SIGKILL');
  await exited(child);
  const before = trials(out);
  const finished = before.filter((t) => t.rungResults.length > 0);
  assert.ok(finished.length >= 6, 'all of rung 0 was in before rung 1 started');
  const resumed = cli(['resume', out]);
  assert.equal(resumed.status, 0, resumed.stderr);
  const after = trials(out);
  for (const t of finished) {
    const again = after[t.index];
    assert.deepEqual(again.rungResults.slice(0, t.rungResults.length), t.rungResults, `trial ${t.index} kept its rung results`);
    if (t.state === 'complete' || t.state === 'pruned') assert.equal(again.finishedAt, t.finishedAt, `trial ${t.index} was retrained`);
  }
  assert.deepEqual(after.map((t) => t.state).sort(), ['complete', 'complete', 'complete', 'pruned', 'pruned', 'pruned']);
  assert.ok(after.filter((t) => t.state === 'complete').every((t) => t.rungResults.length === 2 && t.attempts === 1));
});

test('bad rungs input: one line naming the flag or field, exit 2, nothing written', () => {
  const dir = tempDir('rungs-bad');
  const space = writeTinySpace(dir);
  const flags = ['--samples', '4', '--workers', '1', ...tinyFlags(64, 1)];
  const file = (name: string, rungs: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify({ name: 'bad', space: 'tiny.json', samples: 4, train: { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, augment: false }, launch: { backend: 'wasm' }, rungs }));
    return path;
  };
  const cases: Array<[string[], RegExp]> = [
    // 57 training images at batch 32: one step in all, so no rung below the top trains a step.
    [[space, ...flags, '--rungs', '2'], /--rungs 2 --eta 3 \(rungs.rungs, rungs.eta\): rung 0 would train no step/],
    [[space, ...flags, '--rungs', '2', '--eta', '1'], /--eta expects an integer >= 2/],
    [[space, ...flags, '--finalists', '5'], /--finalists \(rungs.finalists\) 5 is more than the 4 candidate\(s\) the last rung holds/],
    [[space, ...flags, '--eta', '2'], /--eta \(rungs.eta\) applies to a campaign with --rungs above 1 or --finalists/],
    [['--config', file('budget.json', { rungs: 3, eta: 2 })], /rungs.rungs, rungs.eta\): rung 0 would train no step/],
    [['--config', file('eta.json', { rungs: 2, eta: 1 })], /eta.json: rungs.eta/],
    [['--config', file('extra.json', { rungs: 2, executor: 'queue' })], /extra.json: rungs/],
    // A label-free campaign cannot continue a trial from a checkpoint.
    [[space, ...flags, '--rungs', '2', '--train', 'distill', '--parent', join(dir, 'no-parent')], /--train distill \(train.mode distill\) trial cannot continue/],
  ];
  for (const [i, [args, message]] of cases.entries()) {
    const out = join(dir, `run-${i}`);
    const r = cli(['search', ...args, '--out', out]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(existsSync(out), false, 'nothing written');
  }
  assert.throws(() => checkRungs(plan(), tinySettings(), { mode: 'distill', parent: '/p', students: 2 }), /--train distill \(train.mode distill\) trial cannot continue/);
});

test('epochs done of a trial in rungs: a rung\'s part of an epoch is not a finished epoch, and the next rung\'s rest of it is', () => {
  const c = (epoch: number, epochs?: number) => ({ epoch, trainLoss: 1, trainError: 0.5, valLoss: 1, valError: 0.5, lr: 0.1, seconds: 1, ...(epochs === undefined ? {} : { epochs }) });
  assert.equal(epochsDone([c(1, 0.25)]), 0, 'rung 0 stopped a quarter into epoch 1');
  assert.equal(epochsDone([c(1, 0.25), c(1)]), 1, 'rung 1 finished epoch 1');
  assert.equal(epochsDone([c(1, 0.25), c(1), c(2), c(3)]), 3);
  assert.equal(epochsDone([c(1), c(2)]), 2, 'a flat trial');
});

test('trials.csv: a trial in rungs reports the epochs its rungs trained, not its count of curves', () => {
  const curve = (epoch: number, epochs?: number) => ({ epoch, trainLoss: 1, trainError: 0.5, valLoss: 1, valError: 0.5, lr: 0.1, seconds: 1, ...(epochs === undefined ? {} : { epochs }) });
  const result = (rung: number, epochs: number) => ({ rung, epochs, valError: 0.2, testError: null, trainLoss: null, images: 128 });
  const base = { index: 0, round: 0, role: 'sample', state: 'complete', attempts: 1, seed: 1, widths: [4], complexity: { flops: 10, params: 5, activations: 1 } } as unknown as TrialRecord;
  const inRungs = { ...base, rung: 1, curves: [curve(1, 0.25), curve(1)], rungResults: [result(0, 0.25), result(1, 1)] };
  assert.equal(trialRow(['g'], inRungs, 2).epochs, 1);
  assert.equal(trialRow(['g'], { ...inRungs, rung: 0, curves: [curve(1, 0.25)], rungResults: [result(0, 0.25)] }, 2).epochs, 0.25);
  assert.equal(trialRow(['g'], { ...base, curves: [curve(1), curve(2)], rungResults: [] }).epochs, 2, 'a flat trial');
});
