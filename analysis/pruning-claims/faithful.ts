/**
 * The gradient-flow claims (Lubana & Dick, ICLR 2021) checked as the paper's code runs them: global allocation by the
 * measure (5% of every group kept), GraSP at T = 200 and the rest at T = 1, pruning at initialisation, after 1 epoch
 * of a run that then continues its own schedule, and late in that run; every measure including biased loss
 * preservation. Per run it records the immediate change in loss and gradient norm at the pruning moment (the
 * first- and second-order predictions), the training-loss area after pruning and the final test error.
 *
 *   node --import tsx analysis/pruning-claims/faithful.ts [--net resnet20|mobilenet-v1-cifar] [--seeds 5] [--subset 0.1]
 *        [--epochs 10] [--at 0,1,7] [--flops 0.3] [--steps 1] [--test-images 10000] [--threads N] [--out FILE] [--summary-only]
 *
 * --seeds is a count (1..N) or a list (2,4): two processes with disjoint lists and --threads 1 share a 2-core machine
 * and append to the same file. Each row records the CPU seconds its run took, so the write-up can sum core-hours.
 *
 * Writes faithful-<net>.jsonl beside itself (rows already there are kept and skipped on a rerun) and
 * faithful-summary-<net>.md (mean ± sample sd over seeds).
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildNet } from '../../src/nets/registry.js';
import { trainWithPruning } from '../../src/pruning/during-training.js';
import { selectEngine } from '../../src/training/engines/select.js';
import type { TrainSettings } from '../../src/training/types.js';

const { values } = parseArgs({
  options: {
    net: { type: 'string', default: 'resnet20' },
    seeds: { type: 'string', default: '5' },
    subset: { type: 'string', default: '0.1' },
    epochs: { type: 'string', default: '10' },
    at: { type: 'string', default: '0,1,7' },
    flops: { type: 'string', default: '0.3' },
    steps: { type: 'string', default: '1' },
    'test-images': { type: 'string', default: '10000' },
    threads: { type: 'string' },
    criteria: { type: 'string', default: 'l2,snip,biased-loss,grasp,gradnorm,random' },
    out: { type: 'string' },
    'summary-only': { type: 'boolean', default: false },
  },
});
const NET = values.net!;
const SEEDS = values.seeds!.includes(',') ? values.seeds!.split(',').map(Number) : Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
const EPOCHS = Number(values.epochs);
const AT = values.at!.split(',').map(Number);
const FLOPS = Number(values.flops);
const STEPS = Number(values.steps);
const CRITERIA = values.criteria!.split(',');
const OUT = values.out ? resolve(values.out) : join(import.meta.dirname, `faithful-${NET}.jsonl`);
const SUMMARY = OUT.replace(/\.jsonl$/, '').replace(/faithful-/, 'faithful-summary-') + '.md';

interface Row {
  key: string;
  net: string;
  seed: number;
  criterion: string;
  at: number;
  flops: number;
  widths: number[];
  /** Loss and gradient norm on the scoring batches just before and after the (first) pruning step. */
  lossBefore: number;
  lossAfter: number;
  gradNormBefore: number;
  gradNormAfter: number;
  /** Sum of the per-epoch training losses from the pruning epoch on (lower: converges faster). */
  lossArea: number;
  testError: number;
  /** CPU seconds of this process during the run (user + system, every thread). */
  cpuSeconds?: number;
}

const done = new Map<string, Row>();
if (existsSync(OUT)) for (const l of readFileSync(OUT, 'utf8').split('\n').filter(Boolean)) done.set(JSON.parse(l).key, JSON.parse(l));

if (!values['summary-only']) {
  const spec = buildNet({ family: NET, input: [28, 28, 1], classes: 10 });
  const { engine, reason } = await selectEngine('auto', values.threads ? { threads: Number(values.threads) } : {});
  console.log(`engine: ${reason}; ${NET}; prune at ${AT.join(',')} of ${EPOCHS} epochs to ${FLOPS} of the FLOPs, global allocation`);
  const settings: TrainSettings = {
    data: { name: 'fashion-mnist', subset: Number(values.subset), valFraction: 0.02, testSubset: Math.min(1, Number(values['test-images']) / 10000), augment: true },
    epochs: EPOCHS, batchSize: 128, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 5e-4, warmupEpochs: 0, labelSmoothing: 0,
    backend: engine.name as TrainSettings['backend'],
  };
  // Seeds outermost, so a run cut short has every measure and moment for the seeds it finished.
  for (const seed of SEEDS) {
    for (const at of AT) {
      for (const criterion of CRITERIA) {
        const key = `${NET}/s${seed}/at${at}/${criterion}`;
        if (done.has(key)) continue;
        const cpu0 = process.cpuUsage();
        const r = await trainWithPruning({
          spec, target: { flops: FLOPS }, allocation: 'global', criterion, at, steps: STEPS, every: 1, combine: 'sum', scoreBatches: 4,
          finetuneEpochs: 0, finetuneLr: 0.01, settings, seed, engine, measureFlow: true,
        });
        if (r.status !== 'complete') throw new Error(`${key}: ${r.error}`);
        const flow = r.pruneSteps[0].flow!;
        const after = r.curves.filter((c) => c.epoch > at);
        const row: Row = {
          key, net: NET, seed, criterion, at, flops: r.complexity.flops / r.parentComplexity.flops, widths: r.widths,
          ...flow, lossArea: after.reduce((a, c) => a + c.trainLoss, 0), testError: r.testError!,
          cpuSeconds: (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(cpu0)),
        };
        done.set(key, row);
        appendFileSync(OUT, JSON.stringify(row) + '\n');
        console.log(`${key}: loss ${flow.lossBefore.toFixed(3)} -> ${flow.lossAfter.toFixed(3)}, |g| ${flow.gradNormBefore.toFixed(3)} -> ${flow.gradNormAfter.toFixed(3)}, area ${row.lossArea.toFixed(2)}, test ${(100 * row.testError).toFixed(2)}%`);
      }
    }
  }
}

// Summary: per moment and measure, mean ± sd over seeds of each quantity the claims are about.
const stat = (xs: number[]): string => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${m.toFixed(3)} ± ${sd.toFixed(3)}`;
};
const rows = [...done.values()].filter((r) => r.net === NET);
const lines = [
  `| prune at epoch | measure | n | Δ loss at pruning | Δ ‖g‖ at pruning | training-loss area after | test error % |`,
  `|---|---|---|---|---|---|---|`,
];
for (const at of [...new Set(rows.map((r) => r.at))].sort((a, b) => a - b)) {
  for (const criterion of [...new Set(rows.map((r) => r.criterion))]) {
    const rs = rows.filter((r) => r.at === at && r.criterion === criterion);
    if (rs.length === 0) continue;
    lines.push(`| ${at} | ${criterion} | ${rs.length} | ${stat(rs.map((r) => r.lossAfter - r.lossBefore))} | ${stat(rs.map((r) => r.gradNormAfter - r.gradNormBefore))} | ` +
      `${stat(rs.map((r) => r.lossArea))} | ${stat(rs.map((r) => 100 * r.testError))} |`);
  }
}
writeFileSync(SUMMARY, lines.join('\n') + '\n');
console.log(lines.join('\n'));
