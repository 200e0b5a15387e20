/** Campaign files: validated with one-line errors naming file and JSON path, merged with flags (flags win), stored in the run directory, diffed against a later request. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readdirSync } from 'node:fs';
import { diffCampaigns, loadCampaignFile } from '../src/cli/campaign-file.js';
import { cli, ROOT, TINY_SPACE, tempDir, tinyFlags, writeTinySpace } from './campaign-helpers.js';

/** A campaign file equivalent to `search SPACE --samples 2 --workers 1 <tinyFlags>`. */
function tinyCampaign(space: unknown, patch: Record<string, unknown> = {}) {
  return {
    name: 'tiny',
    space,
    samples: 2,
    train: { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, lr: 0.05, augment: false },
    launch: { backend: 'wasm', workers: 1 },
    ...patch,
  };
}

function write(dir: string, name: string, json: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  return path;
}

const stored = (out: string) => JSON.parse(readFileSync(join(out, 'campaign.json'), 'utf8'));

test('bad campaign files: one line naming the file and the JSON path, exit code 2', () => {
  const dir = tempDir('cfile-bad');
  writeTinySpace(dir);
  const cases: [unknown, RegExp][] = [
    [tinyCampaign('tiny.json', { samples: 'many' }), /bad-0\.json: samples: expected number, received string/],
    [{ ...tinyCampaign('tiny.json'), train: { data: 'synthetic', epochs: 1, subset: 1.5 } }, /bad-1\.json: train\.subset: .*1/],
    [{ ...tinyCampaign('tiny.json'), train: { data: 'imagenet', epochs: 1 } }, /bad-2\.json: train\.data: .*fashion-mnist/],
    [{ ...tinyCampaign('tiny.json'), train: { data: 'synthetic' } }, /bad-3\.json: train\.epochs: missing/],
    [tinyCampaign('tiny.json', { lauch: {} }), /bad-4\.json: .*lauch/],
    [tinyCampaign('missing.json'), /bad-5\.json: space: space file missing\.json does not exist/],
    [tinyCampaign({ ...TINY_SPACE, samplers: [{ keep: { min: 'a', max: 1 } }] }), /bad-6\.json: space\.samplers\.0\.keep\.min: expected number/],
    [tinyCampaign('tiny.json', { analysis: { rules: ['ratio', 'vibes'] } }), /bad-7\.json: analysis\.rules\.1: .*ratio/],
    [tinyCampaign('tiny.json', { name: 'a b' }), /bad-8\.json: name: expected letters/],
    ['{ "name": ', /bad-9\.json: not valid JSON/],
    [tinyCampaign('tiny.json', { launch: { backend: 'wasm', measureLatency: 'tensorrt' } }), /bad-10\.json: launch\.measureLatency: .*onnxruntime/],
    [tinyCampaign('tiny.json', { launch: { backend: 'wasm', latencyTable: '' } }), /bad-11\.json: launch\.latencyTable: expected a table file path/],
    [tinyCampaign('tiny.json', { launch: { backend: 'wasm', latencyTable: 3 } }), /bad-12\.json: launch\.latencyTable: expected string, received number/],
  ];
  cases.forEach(([json, message], i) => {
    const path = write(dir, `bad-${i}.json`, json);
    const r = cli(['search', '--config', path, '--out', join(dir, `run-${i}`)]);
    assert.equal(r.status, 2, `case ${i}: ${r.stderr}`);
    assert.match(r.stderr, message, `case ${i}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.ok(!existsSync(join(dir, `run-${i}`)), 'nothing written');
  });
  const none = cli(['search', '--out', join(dir, 'x'), ...tinyFlags()]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /search needs a space file argument or --config/);
  const both = cli(['search', join(dir, 'tiny.json'), '--config', join(dir, 'bad-0.json')]);
  assert.match(both.stderr, /either as an argument or in the campaign file/);
  const noSamples = cli(['search', join(dir, 'tiny.json'), '--out', join(dir, 'y'), ...tinyFlags()]);
  assert.match(noSamples.stderr, /search needs --samples/);
});

test('a campaign file gives the same campaign as its flags; flags override it; a different request lists each difference', () => {
  const dir = tempDir('cfile-run');
  const space = writeTinySpace(dir);
  const file = write(dir, 'tiny-campaign.json', tinyCampaign('tiny.json'));

  const byFlags = join(dir, 'by-flags');
  const r1 = cli(['search', space, '--samples', '2', '--workers', '1', ...tinyFlags(64, 1), '--out', byFlags]);
  assert.equal(r1.status, 0, r1.stderr);
  const byFile = join(dir, 'by-file');
  const r2 = cli(['search', '--config', file, '--out', byFile]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /5 complete, 0 failed/, '2 candidates and the 3 seeds of the uniform reference');
  // The stored campaigns differ only in name and where the space came from.
  assert.deepEqual(diffCampaigns(stored(byFlags), stored(byFile)), []);
  assert.equal(stored(byFile).name, 'tiny');
  assert.deepEqual(stored(byFile).space, TINY_SPACE);
  assert.ok(existsSync(join(byFile, 'space-r0.json')));

  // A flag typed on the command line wins over the file.
  const overridden = join(dir, 'overridden');
  const r3 = cli(['search', '--config', file, '--out', overridden, '--samples', '3', '--lr', '0.02']);
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(stored(overridden).samples, 3);
  assert.equal(stored(overridden).train.lr, 0.02);
  assert.equal(stored(overridden).train.batch, 32, 'the rest from the file');

  // The same request again continues the stored campaign.
  const again = cli(['search', '--config', file, '--out', byFile]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /already holds this campaign/);

  // A different one: one line per difference, then where to go; nothing is changed.
  const before = readFileSync(join(byFile, 'campaign.json'), 'utf8');
  const changed = write(dir, 'changed.json', tinyCampaign('tiny.json', {
    seed: 4, train: { data: 'synthetic', syntheticSamples: 64, epochs: 2, batch: 32, lr: 0.05, augment: false },
    launch: { backend: 'wasm', workers: 2 },
  }));
  const diff = cli(['search', '--config', changed, '--out', byFile]);
  assert.equal(diff.status, 2, diff.stderr);
  const lines = diff.stderr.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1).sort(), [
    `prunespace: ${byFile}/campaign.json: seed: stored 0, requested 4`,
    `prunespace: ${byFile}/campaign.json: train.epochs: stored 1, requested 2`,
  ], 'workers may differ between sessions');
  assert.match(lines.at(-1)!, new RegExp(`holds a different campaign \\(2 difference\\(s\\) above\\); continue the stored one with prunespace resume ${byFile}`));
  assert.equal(readFileSync(join(byFile, 'campaign.json'), 'utf8'), before);
});

test('an inline space and the default --out runs/<name>', () => {
  const dir = tempDir('cfile-inline');
  const name = `test-inline-${process.pid}`;
  const file = write(dir, 'inline.json', tinyCampaign(TINY_SPACE, { name, samples: 1 }));
  const out = join(ROOT, 'runs', name);
  try {
    const r = cli(['search', '--config', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(stored(out).space, TINY_SPACE);
    assert.match(stored(out).spaceSource, /inline\.json \(inline\)/);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'space-r0.json'), 'utf8')), TINY_SPACE);
  } finally {
    rmSync(out, { recursive: true, force: true }); // the test's own run directory under runs/
  }
});

test('diffCampaigns: nested paths, absent fields, session-only fields ignored', () => {
  const a = { seed: 0, train: { lr: 0.1, steps: 5 }, launch: { workers: 1, backend: 'wasm' }, name: 'a' };
  const b = { seed: 0, train: { lr: 0.2 }, launch: { workers: 4, backend: 'wasm' }, name: 'b' };
  assert.deepEqual(diffCampaigns(a, b), ['train.lr: stored 0.1, requested 0.2', 'train.steps: stored 5, requested (not set)']);
});

test('launch.latencyTable: relative to the campaign file, and a session field (another table is no different request)', () => {
  const dir = tempDir('cfile-latency');
  writeTinySpace(dir);
  const path = write(dir, 'lat.json', tinyCampaign('tiny.json', { launch: { backend: 'wasm', latencyTable: 'tables/cpu.json' } }));
  assert.equal(loadCampaignFile(path).file.launch.latencyTable, join(dir, 'tables', 'cpu.json'));
  const absolute = write(dir, 'abs.json', tinyCampaign('tiny.json', { launch: { backend: 'wasm', latencyTable: '/elsewhere/t.json' } }));
  assert.equal(loadCampaignFile(absolute).file.launch.latencyTable, '/elsewhere/t.json');
  const stored = { seed: 0, launch: { backend: 'wasm', latencyTable: join(dir, 'tables', 'cpu.json') } };
  assert.deepEqual(diffCampaigns(stored, { seed: 0, launch: { backend: 'wasm', latencyTable: '/elsewhere/t.json' } }), []);
  assert.deepEqual(diffCampaigns(stored, { seed: 0, launch: { backend: 'wasm' } }), []);
});

test('every shipped campaign file is valid and names an existing space', () => {
  const files = readdirSync(join(ROOT, 'campaigns')).filter((f) => f.endsWith('.json'));
  assert.ok(files.includes('demo-fmnist.json'));
  for (const f of files) {
    const loaded = loadCampaignFile(join(ROOT, 'campaigns', f));
    assert.equal(`${loaded.file.name}.json`, f, 'file named after its campaign');
    assert.ok(existsSync(loaded.spacePath));
  }
});
