import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerCommands } from '../src/cli/commands/index.js';
import { describeLength, epochBound, trainSettings } from '../src/cli/training-flags.js';
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
    [['sample', 'spaces/resnet20-fmnist.json', '-n', '2', '--max-attempts', '9'], /--max-attempts is now --max-draws/],
    [['sample', 'spaces/resnet20-fmnist.json', '-n', '2', '--max-draws', '0'], /--max-draws expects an integer >= 1/],
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
  // The commands as the CLI registers them, so a new command is covered without editing this test.
  const program = new Command();
  registerCommands(program);
  const commands = program.commands.map((c) => c.name());
  assert.ok(commands.length >= 8 && commands.includes('search') && commands.includes('train'), commands.join(', '));
  for (const command of commands) {
    const r = cli([command, '--help']);
    assert.equal(r.status, 0, `${command} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: prunespace ${command}`));
    assert.ok(r.stdout.split('\n').length > 3, `${command} --help lists its options`);
  }
});

test('sample --max-draws bounds the draws', () => {
  // About 14% of draws land in this regime, so 100 draws cannot give 50 configurations.
  const r = cli(['sample', 'spaces/resnet20-fmnist.json', '-n', '50', '--max-draws', '100', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.attempts, 100);
  assert.ok(out.configs.length > 0 && out.configs.length < 50, `${out.configs.length} configurations`);
  assert.match(r.stderr, /warning: only \d+ configurations accepted in 100 draws/);
});

test('a run bounded by --steps alone is described by its steps, never as a million epochs', () => {
  const flags = { data: 'synthetic', augment: false, batch: 8, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0, warmup: 0, labelSmoothing: 0, backend: 'wasm', preciseBn: 0 } as const;
  const stepsOnly = trainSettings({ ...flags, steps: 500 }, 1);
  assert.equal(describeLength(stepsOnly), '500 steps');
  assert.equal(epochBound(stepsOnly), undefined);
  assert.equal(describeLength(trainSettings({ ...flags, epochs: 3, steps: 500 }, 1)), '3 epoch(s) or 500 steps');
  assert.equal(describeLength(trainSettings({ ...flags }, 2)), '2 epoch(s)');
});
