/**
 * Evidence for label-free compression on Fashion-MNIST (ResNet-20): at the same FLOPs, compares distillation pruning
 * without labels, L1 pruning plus fine-tuning with labels, the best candidate of a pruning-space campaign trained from
 * scratch, and the uniform-width network trained from scratch, over several seeds. Every number comes from the
 * prunespace CLI; results append to results.jsonl (a rerun skips what is there), summary.md is rewritten at the end.
 *
 *   node --import tsx analysis/distill-fmnist/run.ts [--subset 0.05] [--val-fraction 0.02] [--parent-epochs 3] [--epochs 1] \
 *        [--seeds 1,2,3] [--targets 0.5,0.3] [--candidates 4 (0: no campaign)] [--work runs/distill-fmnist] [--results DIR] [--summary-only]
 *        [--at-distilled-widths] [--ablations] [--reselect-every 5] [--sensitivity-batches 2] [--bn-batches 8] [--val-batches 8]
 *
 * --at-distilled-widths adds L1 + fine-tuning and training from scratch at each distilled model's own widths (so the
 * allocation is not confounded); --ablations adds distillation with one student (no mutual learning), without the
 * feature loss, and without dynamic re-selection (channels chosen once, at the start). The setup the seed describes
 * (see README.md, "As the paper ran it") is
 *   --subset 1 --parent-epochs 15 --epochs 15 --seeds 1,2,3,4,5 --targets 0.4,0.25 --candidates 0 --at-distilled-widths
 *   --ablations --reselect-every 100 --sensitivity-batches 4 --bn-batches 16 --val-batches 0 --results analysis/distill-fmnist/faithful
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildNet } from '../../src/nets/registry.js';
import { baseWidths } from '../../src/nets/resolve.js';
import { widthsForFlops } from '../../src/pruning/targets.js';

const here = new URL('.', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    subset: { type: 'string', default: '0.05' },
    'val-fraction': { type: 'string', default: '0.02' },
    'parent-epochs': { type: 'string', default: '3' },
    epochs: { type: 'string', default: '1' },
    seeds: { type: 'string', default: '1,2,3' },
    targets: { type: 'string', default: '0.5,0.3' },
    candidates: { type: 'string', default: '4' },
    work: { type: 'string', default: 'runs/distill-fmnist' },
    results: { type: 'string', default: here },
    'summary-only': { type: 'boolean', default: false },
    'at-distilled-widths': { type: 'boolean', default: false },
    ablations: { type: 'boolean', default: false },
    'reselect-every': { type: 'string', default: '5' },
    'sensitivity-batches': { type: 'string', default: '2' },
    'bn-batches': { type: 'string', default: '8' },
    /** 0: the whole validation split. */
    'val-batches': { type: 'string', default: '8' },
  },
});
// The distillation settings every distill run shares (the first results used the defaults above).
const distillFlags = [
  '--reselect-every', values['reselect-every']!, '--sensitivity-batches', values['sensitivity-batches']!, '--bn-batches', values['bn-batches']!,
  ...(values['val-batches'] !== '0' ? ['--val-batches', values['val-batches']!] : []),
];
const subset = values.subset!;
const parentEpochs = Number(values['parent-epochs']);
const epochs = Number(values.epochs);
const seeds = values.seeds!.split(',').map(Number);
const targets = values.targets!.split(',').map(Number);
const work = values.work!;
mkdirSync(work, { recursive: true });
const out = values.results!;
mkdirSync(out, { recursive: true });
const resultsPath = join(out, 'results.jsonl');

interface Row {
  key: string;
  method: string;
  target: number;
  seed: number;
  testError: number;
  flops: number;
  /** Wall seconds of every training run this result needed (parent included where it inherits from one). */
  seconds: number;
  /** Training epochs over the training subset, summed over the runs it needed. */
  epochs: number;
  widths: number[];
}

const done = new Map<string, Row>();
if (existsSync(resultsPath)) for (const l of readFileSync(resultsPath, 'utf8').split('\n').filter(Boolean)) done.set(JSON.parse(l).key, JSON.parse(l));

function cli(args: string[]): { stdout: string; seconds: number } {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`prunespace ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  process.stderr.write(`  ${args[0]} ${seconds.toFixed(0)}s\n`);
  return { stdout: r.stdout, seconds };
}

function record(row: Row): Row {
  done.set(row.key, row);
  appendFileSync(resultsPath, JSON.stringify(row) + '\n');
  console.log(`${row.method} F=${row.target} seed ${row.seed}: test error ${(100 * row.testError).toFixed(2)}%, ${(row.flops / 1e6).toFixed(2)}M FLOPs, ${row.seconds.toFixed(0)}s`);
  return row;
}

const data = ['--data', 'fashion-mnist', '--subset', subset];
// prune has no --val-fraction (it holds out 10%); the others hold out less so evaluation costs less time. Every
// method trains on the same number of images and is tested on the same 10,000 test images.
const withVal = [...data, '--val-fraction', values['val-fraction']!];
const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
const meta = (dir: string) => JSON.parse(readFileSync(join(dir, 'prunespace.json'), 'utf8'));

function trainRow(key: string, method: string, target: number, seed: number, widths: number[], ep: number, extraSeconds = 0, extraEpochs = 0, save?: string): Row {
  const hit = done.get(key);
  if (hit) return hit;
  const r = cli(['train', '--net', 'resnet20', '--widths', widths.join(','), ...withVal, '--epochs', String(ep), '--seed', String(seed), '--json', ...(save ? ['--save', save] : [])]);
  const j = JSON.parse(r.stdout);
  if (j.status !== 'complete') throw new Error(`${key}: ${j.error}`);
  return record({ key, method, target, seed, testError: j.testError, flops: j.complexity.flops, seconds: r.seconds + extraSeconds, epochs: ep + extraEpochs, widths });
}

// Targets outermost, so a run cut short has every method at the first target for every seed.
for (const target of values['summary-only'] ? [] : targets) {
  for (const seed of seeds) {
    // The parent: the original network trained with labels, once (seed 0); the seeds vary what follows it.
    const parentDir = join(work, 'parent');
    const parent = trainRow('parent', 'parent', 1, 0, baseWidths(spec), parentEpochs, 0, 0, parentDir);
    // Label-free distillation pruning of the parent (training reads no label; --evaluate reads test labels once), and its ablations.
    const variants: [string, string, string[]][] = [['distill', 'distill (no labels)', []]];
    if (values.ablations) {
      variants.push(
        ['distill-1student', 'distill, one student (no mutual learning)', ['--students', '1']],
        ['distill-nofeatures', 'distill, no feature loss', ['--lambda-features', '0']],
        // Re-selection never comes: the channels chosen at the first step stay the sparsity target.
        ['distill-noreselect', 'distill, no dynamic re-selection', ['--reselect-every', '1000000000']],
      );
    }
    for (const [name, method, extra] of variants) {
      const dKey = `${name}/${target}/s${seed}`;
      if (done.has(dKey)) continue;
      const out = join(work, `${name}-${target}-s${seed}`);
      const r = cli(['distill', '--parent', parentDir, '--flops', String(target), '--epochs', String(epochs), ...withVal, '--seed', String(seed), ...distillFlags, ...extra, '--evaluate', '--out', out]);
      const m = r.stdout.match(/test error ([\d.]+)%/);
      const md = meta(out);
      record({ key: dKey, method, target, seed, testError: Number(m![1]) / 100, flops: md.complexity.flops, seconds: r.seconds + parent.seconds, epochs: epochs + parentEpochs, widths: md.widths });
    }
    const distilled = done.get(`distill/${target}/s${seed}`)!;
    if (values['at-distilled-widths']) {
      // The distilled widths with labels: L1 pruning to exactly those widths plus fine-tuning, and those widths from scratch.
      const lKey = `l1-finetune-distilled-widths/${target}/s${seed}`;
      if (!done.has(lKey)) {
        const out = join(work, `l1dw-${target}-s${seed}`);
        const r = cli(['prune', '--parent', parentDir, '--criterion', 'l1', '--widths', distilled.widths.join(','), '--epochs', String(epochs), ...data, '--seed', String(seed), '--json', '--out', out]);
        const j = JSON.parse(r.stdout);
        record({ key: lKey, method: 'L1 + fine-tune at distilled widths (labels)', target, seed, testError: j.metrics.testError, flops: j.complexity.flops, seconds: r.seconds + parent.seconds, epochs: epochs + parentEpochs, widths: j.widths });
      }
      trainRow(`scratch-distilled-widths/${target}/s${seed}`, 'distilled widths, scratch', target, seed, distilled.widths, parentEpochs + epochs);
    }
    // L1 filter pruning at the widest uniform keep ratio under the target, then fine-tuning with labels.
    const pKey = `l1-finetune/${target}/s${seed}`;
    if (!done.has(pKey)) {
      const out = join(work, `l1-${target}-s${seed}`);
      const r = cli(['prune', '--parent', parentDir, '--criterion', 'l1', '--flops', String(target), '--epochs', String(epochs), ...data, '--seed', String(seed), '--json', '--out', out]);
      const j = JSON.parse(r.stdout);
      record({ key: pKey, method: 'L1 + fine-tune (labels)', target, seed, testError: j.metrics.testError, flops: j.complexity.flops, seconds: r.seconds + parent.seconds, epochs: epochs + parentEpochs, widths: j.widths });
    }
    // The uniform-width network from scratch, with the parent's and the compression's epochs together.
    const uniform = widthsForFlops(spec, baseWidths(spec), target).widths;
    trainRow(`uniform/${target}/s${seed}`, 'uniform, scratch', target, seed, uniform, parentEpochs + epochs);
  }
}

// The best candidate of a pruning-space campaign per target (one campaign, seed 1), retrained from scratch per seed.
for (const target of Number(values.candidates) > 0 && !values['summary-only'] ? targets : []) {
  const cKey = `campaign/${target}`;
  let campaign = done.get(cKey);
  if (!campaign) {
    const space = JSON.parse(readFileSync('spaces/resnet20-fmnist.json', 'utf8'));
    space.name = `resnet20-fmnist-${target}`;
    space.regime = { flops: { min: target - 0.05, max: target } };
    const spacePath = join(work, `space-${target}.json`);
    writeFileSync(spacePath, JSON.stringify(space, null, 2));
    const dir = join(work, `campaign-${target}`);
    const r = cli(['search', spacePath, '--samples', values.candidates!, '--epochs', '1', ...withVal, '--workers', '1', '--seed', '1', '--out', dir]);
    const trials = readFileSync(join(dir, 'trials.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const best = trials.filter((t) => t.state === 'complete' || t.status === 'complete').sort((a, b) => a.valError - b.valError)[0];
    campaign = record({ key: cKey, method: 'campaign search', target, seed: 1, testError: best.testError, flops: best.flops ?? best.complexity?.flops, seconds: r.seconds, epochs: Number(values.candidates), widths: best.widths });
  }
  for (const seed of seeds) {
    trainRow(`campaign-best/${target}/s${seed}`, 'campaign best, scratch', target, seed, campaign.widths, parentEpochs + epochs, campaign.seconds, campaign.epochs);
  }
}

// Summary: mean and standard deviation of test error per method and target.
const rows = [...done.values()].filter((r) => r.method !== 'campaign search');
const groups = new Map<string, Row[]>();
for (const r of rows) groups.set(`${r.method}|${r.target}`, [...(groups.get(`${r.method}|${r.target}`) ?? []), r]);
const lines = [
  `| method | FLOPs target | n | test error % (mean ± sd) | FLOPs (M) | training wall s (mean) | epochs |`,
  `|---|---|---|---|---|---|---|`,
];
for (const [k, rs] of [...groups].sort()) {
  const [method, target] = k.split('|');
  const e = rs.map((r) => 100 * r.testError);
  const mean = e.reduce((a, b) => a + b, 0) / e.length;
  const sd = e.length > 1 ? Math.sqrt(e.reduce((a, b) => a + (b - mean) ** 2, 0) / (e.length - 1)) : 0;
  const avg = (f: (r: Row) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  lines.push(`| ${method} | ${target} | ${rs.length} | ${mean.toFixed(2)} ± ${sd.toFixed(2)} | ${(avg((r) => r.flops) / 1e6).toFixed(2)} | ${avg((r) => r.seconds).toFixed(0)} | ${avg((r) => r.epochs)} |`);
}
writeFileSync(join(out, 'summary.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
