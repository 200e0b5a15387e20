import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli } from './campaign-helpers.js';


test('complexity prints the published ResNet-56 figures and JSON', () => {
  const text = cli(['complexity', '--net', 'resnet56']);
  assert.equal(text.status, 0);
  assert.match(text.stdout, /FLOPs\s+125,485,696/);
  assert.match(text.stdout, /params\s+853,018/);
  const json = JSON.parse(cli(['complexity', '--net', 'resnet56', '--keep', '0.5', '--json']).stdout);
  assert.equal(json.groups.length, 30);
  assert.equal(json.groups[0].width, 8);
  assert.ok(json.flops < 0.3 * json.original.flops);
});

test('sample is deterministic and CSV has one column per group', () => {
  const a = cli(['sample', 'spaces/resnet20-fmnist.json', '-n', '5', '--seed', '9', '--csv']);
  const b = cli(['sample', 'spaces/resnet20-fmnist.json', '-n', '5', '--seed', '9', '--csv']);
  assert.equal(a.status, 0);
  assert.equal(a.stdout, b.stdout);
  const lines = a.stdout.trim().split('\n');
  assert.equal(lines.length, 6);
  assert.equal(lines[0].split(',').length, 5 + 12);
  assert.match(a.stderr, /acceptance/);
});

test('bad input gives one clear line and exit code 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-cli-'));
  const good = JSON.stringify({
    name: 'x',
    network: { family: 'resnet20' },
    samplers: [{ keep: { min: 0.2, max: 1 } }],
    regime: { flops: { min: 0.4, max: 0.6 } },
  });
  const files: Record<string, string> = {
    'missing-field.json': good.replace('"name":"x",', ''),
    'wrong-type.json': good.replace('"min":0.2', '"min":"low"'),
    'unknown-net.json': good.replace('resnet20', 'resnet7'),
    'impossible.json': good.replace('"min":0.4,"max":0.6', '"min":0.001,"max":0.002'),
    'not-json.json': 'name: x',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const cases: [string[], RegExp][] = [
    [['sample', join(dir, 'missing-field.json'), '-n', '2'], /missing-field\.json: name: missing/],
    [['sample', join(dir, 'wrong-type.json'), '-n', '2'], /wrong-type\.json: samplers\.0\.keep\.min: expected number/],
    [['sample', join(dir, 'unknown-net.json'), '-n', '2'], /unknown network 'resnet7'/],
    [['sample', join(dir, 'impossible.json'), '-n', '2'], /regime\.flops asks .* space reaches only/],
    [['sample', join(dir, 'not-json.json'), '-n', '2'], /not-json\.json: not valid JSON/],
    [['sample', join(dir, 'absent.json'), '-n', '2'], /absent\.json does not exist/],
    [['complexity', '--net', 'nope'], /unknown network 'nope'/],
    [['complexity', '--net', 'resnet20', '--keep', '1.5'], /--keep expects a number/],
    [['complexity', '--net', 'resnet20', '--frobnicate'], /unknown option '--frobnicate'/],
    [['sample', 'spaces/resnet20-fmnist.json'], /required option/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('every command has --help', () => {
  for (const command of ['complexity', 'sample']) {
    const r = cli([command, '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: prunespace/);
  }
});
