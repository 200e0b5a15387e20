import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import { r20Space, syntheticCampaign, writeSyntheticStore } from './analysis-fixtures.js';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'prunespace-analysis-'));
const evil = '<script>alert(1)</script>';
// A run directory whose name is markup, a space whose description is a script.
const runDir = join(root, 'runs', 'r20 <img src=x onerror=alert(2)>');
const otherDir = join(root, 'runs', 'other');
const fewDir = join(root, 'runs', 'few');

test('report and refine work on a campaign store written through the store API', async (t) => {
  await writeSyntheticStore(runDir, syntheticCampaign({ n: 96, space: { ...r20Space, description: evil } }));
  await writeSyntheticStore(otherDir, syntheticCampaign({ n: 40, seed: 11 }));
  const out = join(root, 'analysis', 'r20');

  await t.test('report writes a self-contained, escaped report.html and the CSVs behind it', () => {
    const r = cli(['report', runDir, '--compare', otherDir, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*report\.html/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(!/<script/i.test(html) && !/<img/i.test(html), 'user strings must be escaped');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(!/(src|href)="(https?:)?\/\//.test(html), 'no network fetches');
    for (const plot of ['edf', 'ratio', 'bucket-edf', 'metric-bins', 'profile', 'pareto', 'curves']) assert.ok(html.includes(`data-plot="${plot}"><svg`), plot);
    for (const csv of ['edf.csv', 'ratio-trials.csv', 'ratio-buckets.csv', 'ratio-fit.csv', 'ratio-bucket-edfs.csv', 'width-profile.csv', 'pareto.csv', 'curves.csv', 'best.csv', 'metrics.csv']) {
      assert.ok(existsSync(join(out, csv)), csv);
    }
    assert.match(readFileSync(join(out, 'best.csv'), 'utf8'), /^rank,index,round,val_error,test_error,flops,params/);
  });

  await t.test('refine writes a loadable child space, refuses to overwrite without --force', () => {
    const child = join(root, 'spaces', 'r20.r1.json');
    const r = cli(['refine', runDir, '--out', child]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the child keeps \d+(\.\d)?% of the parent space/);
    assert.match(r.stdout, /(applied|skipped) ratio: /);
    const loaded = loadSpace(child);
    assert.equal(loaded.file.parent, '../runs/r20 <img src=x onerror=alert(2)>/space-r0.json');
    const prov = loaded.file.provenance as { rules: { rule: string; applied: boolean; reason: string }[]; campaign: { round: number } };
    assert.deepEqual(prov.rules.map((x) => x.rule), ['ratio', 'monotone', 'ranges']);
    // Provenance names the campaign relative to the child file, not by this machine's absolute path.
    assert.equal((prov.campaign as unknown as { dir: string }).dir, '../runs/r20 <img src=x onerror=alert(2)>');
    assert.ok(prov.rules.some((x) => x.applied));
    assert.equal(prov.campaign.round, 0);
    assert.ok(sampleSpace(compileSpace(loaded), 10, 1).configs.length === 10);

    const again = cli(['refine', runDir, '--out', child]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists \(use --force/);
    assert.equal(cli(['refine', runDir, '--out', child, '--force', '--rules', 'monotone']).code, 0);
    assert.equal((loadSpace(child).file.provenance as { rules: unknown[] }).rules.length, 1);
  });

  await t.test('bad input gives one line and exit code 2', () => {
    const bad = cli(['refine', runDir, '--rules', 'ratio,magic', '--out', join(root, 'x.json')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--rules expects/);
    const removed = cli(['refine', runDir, '--rules', 'params', '--out', join(root, 'x.json')]);
    assert.equal(removed.code, 2);
    assert.match(removed.stderr, /params rule was removed.*FLOPs\/param window/);
    assert.equal(removed.stderr.trim().split('\n').length, 1);
    const noRungs = cli(['refine', runDir, '--rung', '1', '--out', join(root, 'x.json')]);
    assert.equal(noRungs.code, 2);
    assert.match(noRungs.stderr, /^prunespace: --rung 1: .* trains no rungs \(only rung 0\)\n$/);
    assert.ok(!existsSync(join(root, 'x.json')), 'nothing written');
    const noRound = cli(['report', runDir, '--round', '5', '--out', join(root, 'analysis', 'x')]);
    assert.equal(noRound.code, 2);
    assert.match(noRound.stderr, /no trials in round 5/);
    const missing = cli(['report', join(root, 'runs', 'nope')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
  });
});

test('a store with too few trials gets a report that says so instead of crashing', async () => {
  await writeSyntheticStore(fewDir, syntheticCampaign({ n: 2 }));
  const out = join(root, 'analysis', 'few');
  const r = cli(['report', fewDir, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no optimal FLOPs\/param ratio claimed: too few/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /not enough data/);
  assert.match(html, /Only 2 completed trials/);
});
