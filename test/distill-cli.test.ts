/** `prunespace distill` end to end in child processes on synthetic data; bad input is one line, exit code 2, nothing lost. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'prunespace-distill-'));
const parent = join(root, 'parent');
const data = ['--data', 'synthetic', '--synthetic-samples', '192', '--batch', '32'];
const run = (extra: string[], out: string) => cli(['distill', '--parent', parent, '--epochs', '1', '--reselect-every', '2', '--bn-batches', '2', ...data, ...extra, '--out', out]);

before(() => {
  const r = cli(['train', '--net', 'resnet20', '--input', '8x8x1', '--classes', '3', ...data, '--epochs', '1', '--save', parent]);
  assert.equal(r.code, 0, r.stderr);
});

after(() => rmSync(root, { recursive: true, force: true }));

test('distills to a FLOPs target: per-epoch losses, sparsity per group and projected FLOPs; saves a stock model within 2%', () => {
  const out = join(root, 'half');
  const r = run(['--flops', '0.5', '--students', '2'], out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /epoch 1\/1 student 1: loss [\d.]+ \(logits [\d.]+, features [\d.]+, mutual [\d.]+\)  val distill [\d.]+  projected FLOPs /);
  assert.match(r.stdout, /epoch 1\/1 student 2: /);
  assert.match(r.stdout, /zero\/chosen per group: stage1 \d+\/\d+, stage2 \d+\/\d+/);
  assert.match(r.stdout, /saved to /);
  for (const f of ['model.json', 'weights.bin', 'prunespace.json']) assert.ok(existsSync(join(out, f)), f);
  const meta = JSON.parse(readFileSync(join(out, 'prunespace.json'), 'utf8'));
  assert.equal(meta.method, 'distill');
  assert.equal(meta.kept.length, meta.widths.length);
  assert.deepEqual(meta.kept.map((k: number[]) => k.length), meta.widths);
  const target = meta.metrics.targetFlops;
  assert.ok(Math.abs(meta.complexity.flops - target) / target <= 0.02, `${meta.complexity.flops} vs ${target}`);
  // A pruned model is itself a valid parent; --json puts the result alone on stdout, progress on stderr.
  const again = cli(['distill', '--parent', out, '--epochs', '1', '--reselect-every', '2', '--bn-batches', '2', ...data, '--rate', '0.2', '--students', '1', '--evaluate', '--json', '--out', join(root, 'again')]);
  assert.equal(again.code, 0, again.stderr);
  const j = JSON.parse(again.stdout);
  const againMeta = JSON.parse(readFileSync(join(root, 'again', 'prunespace.json'), 'utf8'));
  assert.deepEqual(j.widths, againMeta.widths);
  assert.equal(j.complexity.flops, againMeta.complexity.flops);
  assert.deepEqual(j.parentComplexity, meta.complexity);
  assert.ok(j.testError >= 0 && j.testError <= 1, String(j.testError));
  assert.equal(j.curves.length, 1);
  assert.match(again.stderr, /saved to .*test error [\d.]+%/s);
});

test('a projection that cuts live channels is reported; a penalty strong enough to zero them first is not', () => {
  // One short epoch: the default penalty cannot shrink the chosen channels in time.
  const weak = run(['--flops', '0.5', '--students', '1'], join(root, 'weak'));
  assert.equal(weak.code, 0, weak.stderr);
  const weakMeta = JSON.parse(readFileSync(join(root, 'weak', 'prunespace.json'), 'utf8')).metrics;
  assert.ok(weakMeta.projectedLive > 0 && weakMeta.projectedLive <= weakMeta.projectedChosen, JSON.stringify(weakMeta));
  assert.ok(weakMeta.keptMedianNorm > 0);
  assert.match(weak.stdout, new RegExp(`warning: the sparsity penalty left ${weakMeta.projectedLive} of ${weakMeta.projectedChosen} chosen channels non-zero`));
  // A threshold of lr x lambda = 10 per step zeroes every chosen channel in the step it is chosen.
  const strong = run(['--flops', '0.5', '--students', '1', '--lambda-sparsity', '1000'], join(root, 'strong'));
  assert.equal(strong.code, 0, strong.stderr);
  const strongMeta = JSON.parse(readFileSync(join(root, 'strong', 'prunespace.json'), 'utf8')).metrics;
  assert.equal(strongMeta.projectedLive, 0, JSON.stringify(strongMeta));
  assert.doesNotMatch(strong.stdout, /warning/);
});

test('bad input: one line, exit code 2, nothing already written is lost', () => {
  const expectBad = (args: string[], pattern: RegExp, out = join(root, 'never')) => {
    const r = run(args, out);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  };
  expectBad(['--flops', '0.5', '--students', '0'], /--students expects an integer >= 1/);
  expectBad(['--flops', '100'], /out of reach/);
  expectBad(['--flops', '0.5', '--rate', '0.3'], /exactly one of --flops and --rate/);
  assert.ok(!existsSync(join(root, 'never')));

  const notModel = join(root, 'not-a-model');
  mkdirSync(notModel);
  writeFileSync(join(notModel, 'notes.txt'), 'hello');
  const r = cli(['distill', '--parent', notModel, '--flops', '0.5', '--epochs', '1', ...data, '--out', join(root, 'never')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a prunespace model/);

  // An existing, non-empty --out is refused and left as it was.
  const taken = join(root, 'taken');
  mkdirSync(taken);
  writeFileSync(join(taken, 'keep.txt'), 'precious');
  expectBad(['--flops', '0.5'], /already exists and is not empty/, taken);
  assert.equal(readFileSync(join(taken, 'keep.txt'), 'utf8'), 'precious');

  // Weights that make the loss non-finite.
  const broken = join(root, 'broken');
  cpSync(parent, broken, { recursive: true });
  const size = statSync(join(broken, 'weights.bin')).size;
  writeFileSync(join(broken, 'weights.bin'), Buffer.alloc(size, 0xff));
  const b = cli(['distill', '--parent', broken, '--flops', '0.5', '--epochs', '1', ...data, '--out', join(root, 'never')]);
  assert.equal(b.code, 2, b.stderr);
  assert.match(b.stderr, /non-finite/);
  assert.ok(!existsSync(join(root, 'never')));
});

test('--help lists the method flags', () => {
  const r = cli(['distill', '--help']);
  assert.equal(r.code, 0);
  for (const f of ['--parent', '--flops', '--rate', '--students', '--lambda-sparsity', '--temperature', '--out']) assert.match(r.stdout, new RegExp(f));
});
