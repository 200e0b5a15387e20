/** `prunespace train` end to end in a child process on synthetic data; every bad flag is one line and exit code 2. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = ['--net', 'resnet20', '--input', '12x12x1', '--classes', '3', '--keep', '0.25', '--data', 'synthetic', '--synthetic-samples', '192', '--batch', '32'];

test('trains, prints backend, epochs, validation and test error, and saves', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'prunespace-train-')), 'saved');
  const r = cli([...tiny, '--epochs', '2', '--seed', '3', '--save', dir]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0], /^backend: (torch|wasm|cpu|tensorflow)/);
  assert.match(r.stdout, /epoch +1\/2 +train loss [\d.]+ err [\d.]+%  val loss [\d.]+ err [\d.]+%  lr /);
  assert.match(r.stdout, /epoch +2\/2 /);
  assert.match(r.stdout, /validation error [\d.]+%/);
  assert.match(r.stdout, /test error [\d.]+%/);
  for (const f of ['model.json', 'weights.bin', 'prunespace.json']) assert.ok(existsSync(join(dir, f)), f);
  const meta = JSON.parse(readFileSync(join(dir, 'prunespace.json'), 'utf8'));
  assert.deepEqual(meta.widths, [4, 8, 16, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
  assert.equal(meta.net.family, 'resnet20');
});

test('--json prints one JSON document on stdout, progress on stderr; --steps bounds the run', () => {
  const r = cli([...tiny, '--steps', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.status, 'complete');
  assert.equal(result.steps, 3);
  assert.equal(result.curves.length, 1);
  assert.match(r.stderr, /backend: /);
});

test('a diverging run exits 1 with the reason', () => {
  const r = cli([...tiny, '--epochs', '1', '--lr', '1e12']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /prunespace: training failed: training loss became (NaN|infinite)/);
});

test('bad flags: one line, exit code 2, no stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['--net', 'resnet20', '--data', 'imagenet'], /--data <name>' argument 'imagenet' is invalid/],
    [['--net', 'resnet21', '--data', 'synthetic'], /unknown network 'resnet21'/],
    [['--data', 'synthetic'], /required option '--net <name>'/],
    [['--net', 'resnet20'], /required option '--data <name>'/],
    [['--net', 'resnet20', '--data', 'synthetic', '--keep', '0'], /--keep expects a number > 0/],
    [['--net', 'resnet20', '--data', 'synthetic', '--keep', '0.5', '--widths', '1,2'], /either --keep or --widths/],
    [['--net', 'resnet20', '--data', 'synthetic', '--widths', '16,16'], /has 12 channel groups, got 2 widths/],
    [['--net', 'resnet20', '--data', 'synthetic', '--widths', '99,16,16,16,16,16,16,16,16,16,16,16'], /width of group 0 \(stage1\) must be an integer in 1..16/],
    [['--net', 'resnet20', '--data', 'synthetic', '--epochs', '0'], /--epochs expects an integer >= 1/],
    [['--net', 'resnet20', '--data', 'synthetic', '--batch', 'x'], /--batch expects an integer/],
    [['--net', 'resnet20', '--data', 'synthetic', '--lr', '-1'], /--lr expects a number > 0/],
    [['--net', 'resnet20', '--data', 'synthetic', '--subset', '1.5'], /--subset expects a number > 0 and <= 1/],
    [['--net', 'resnet20', '--data', 'synthetic', '--backend', 'gpu'], /--backend <name>' argument 'gpu' is invalid/],
    [['--net', 'resnet20', '--data', 'synthetic', '--input', '32x32'], /--input must look like HxWxC/],
    [['--net', 'resnet20', '--data', 'fashion-mnist', '--data-dir', '/nonexistent/fm'], /\/nonexistent\/fm: no such directory/],
    [['--net', 'resnet20', '--data', 'fashion-mnist', '--input', '32x32x3', '--data-dir', '/nonexistent/fm'], /no such directory|images are/],
    [['--net', 'resnet20', '--data', 'cifar10', '--synthetic-samples', '10'], /--synthetic-samples applies to --data synthetic only/],
  ];
  for (const [args, message] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
