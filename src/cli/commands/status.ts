/** `prunespace status`: summarise a campaign from its store, also while a coordinator is writing it. */
import type { Command } from 'commander';
import { pValueText, signedPoints } from '../../analysis/finalists.js';
import { compareWithReference, finalistsTable, type ReferenceComparison } from '../../analysis/reference.js';
import { describeInit } from '../../analysis/campaign.js';
import { populationTrials } from '../../analysis/population.js';
import { openCampaign } from '../../campaign/store.js';
import { epochsDone, formatDuration } from '../../campaign/progress.js';
import type { CampaignConfig, TrialRecord } from '../../campaign/types.js';
import { intFlag } from '../parse.js';
import { formatCount } from '../../util/format.js';
import { budgetAccount, type BudgetAccount } from '../../campaign/rungs.js';
import { describeLength, epochBound } from '../training-flags.js';
import { fidelity, fidelityLines } from '../../analysis/fidelity.js';
import { predictionAccuracy, predictorLines, statedWindow } from '../../analysis/latency.js';

interface StatusFlags {
  json?: boolean;
  top: number;
  queue?: string;
  insecure?: boolean;
}

/** The campaign's jobs in the queue: counts by state, and which worker holds each active one. */
async function queueLines(config: CampaignConfig, flags: StatusFlags): Promise<string[]> {
  const { connectQueue, parseQueueUrl, QUEUE_NAME, QUEUE_PREFIX } = await import('../../campaign/queue.js');
  const { campaignId } = await import('../../campaign/job.js');
  const { Queue } = await import('bullmq');
  const target = parseQueueUrl(flags.queue!, { insecure: flags.insecure });
  const redis = await connectQueue(target);
  const queue = new Queue(QUEUE_NAME, { connection: redis, prefix: QUEUE_PREFIX });
  try {
    const id = campaignId(config);
    const states = ['waiting', 'active', 'completed', 'failed'] as const;
    const counts: string[] = [];
    const active: string[] = [];
    for (const state of states) {
      const jobs = (await queue.getJobs(state === 'waiting' ? ['waiting', 'prioritized', 'delayed'] : [state])).filter((j) => j?.id?.startsWith(`${id}-`));
      counts.push(`${jobs.length} ${state}`);
      if (state === 'active') for (const j of jobs) active.push(`#${(j.data as { index: number }).index} on ${(j.progress as { worker?: string })?.worker ?? '?'}`);
    }
    return [`queue ${target.shown}: ${counts.join(', ')}`, ...(active.length ? [`working: ${active.join(', ')}`] : [])];
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** The best candidates (the uniform reference's seeds are what they are compared with, not candidates). */
function best(trials: TrialRecord[], n: number): TrialRecord[] {
  return populationTrials(trials)
    .filter((t) => t.state === 'complete' && t.valError !== null)
    .sort((a, b) => a.valError! - b.valError! || a.index - b.index)
    .slice(0, n);
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);

/** The best candidates against the uniform reference, and the calibrated verdict. */
export function referenceLines(r: ReferenceComparison): string[] {
  const k = r.seeds.length;
  const spread = r.sd !== null ? ` ± ${pct(r.sd)} (sd over ${k} seeds)` : k ? ` (${k} seed${k > 1 ? 's' : ''})` : '';
  const out = [
    `uniform reference: ${r.flops !== null ? `flops ${formatCount(r.flops)}, ` : ''}widths ${r.widths?.join(',') ?? '-'}; ` +
      `${k} of ${r.planned ?? r.created} seed(s) done: val ${pct(r.mean)}${spread}${r.testMean !== null ? `, test ${pct(r.testMean)}` : ''}`,
  ];
  const rung = r.basis === 'top-rung' ? ` (rung ${r.topRung})` : '';
  for (const [i, o] of r.best.entries()) {
    out.push(`  best #${i + 1}: trial ${o.index}  val${rung} ${pct(o.error)}  flops ${formatCount(o.flops)}${r.mean !== null ? `  (${signedPoints(o.error - r.mean)} points vs reference)` : ''}`);
  }
  const pool = r.basis === 'final' ? `best of ${r.candidates} candidates` : `best of ${r.compared} top-rung candidates, selected from ${r.candidates}`;
  if (r.difference !== null) out.push(`best − reference: ${signedPoints(r.difference)} points (${pool})`);
  if (r.finalists) out.push(`best-of-N rule: ${r.bestText}`, ...finalistLines(r));
  out.push(`verdict: ${r.text}`);
  return out;
}

/** Long width lists are cut: the table is for telling finalists apart, `--json` has them whole. */
const widthsText = (w: number[] | null) => (!w ? '-' : w.length <= 8 ? w.join(',') : `${w.slice(0, 8).join(',')},…`);

/** The finalists' table: each seed's validation error, mean ± sd, the difference from the reference and its test. */
export function finalistLines(r: ReferenceComparison): string[] {
  const t = finalistsTable(r);
  if (!t) return [];
  const f = r.finalists!.finalists.length;
  const out = [`finalists (val error at seed ${t.seedIndices.join(', ')}; finalist − reference, ${Math.round(100 * (1 - 2 * r.alpha))}% interval; one-sided p, Holm over ${f}):`];
  for (const row of t.rows) {
    const seeds = row.errors.map(pct).join(' ');
    const spread = row.mean === null ? '-' : `${pct(row.mean)}${row.sd !== null ? ` ± ${pct(row.sd)}` : ''}`;
    const head = row.role === 'reference' ? '  reference' : `  #${row.rank} trial ${row.candidate}`;
    const test = row.role === 'reference' ? '' : row.difference === null ? '  (too few seeds to test)'
      : `  diff ${signedPoints(row.difference)} [${signedPoints(row.interval![0])}, ${signedPoints(row.interval![1])}] points  p ${pValueText(row.p!)} (Holm ${pValueText(row.adjusted!)}, ${row.method})`;
    out.push(`${head}  flops ${row.flops !== null ? formatCount(row.flops) : '-'}  widths ${widthsText(row.widths)}  seeds ${seeds}  mean ${spread}${test}`);
  }
  return out;
}

function referenceJson(r: ReferenceComparison) {
  return {
    planned: r.planned, created: r.created, seeds: r.seeds, widths: r.widths, flops: r.flops, mean: r.mean, sd: r.sd, testMean: r.testMean,
    basis: r.basis, topRung: r.topRung, candidates: r.candidates, compared: r.compared,
    best: r.best.map((o) => ({ index: o.index, valError: o.error, testError: o.testError, flops: o.flops, params: o.params })),
    difference: r.difference, t: r.t, critical: r.critical, threshold: r.threshold, pValue: r.pValue, alpha: r.alpha,
    bestVerdict: r.bestVerdict, bestText: r.bestText,
    finalists: r.finalists
      ? {
          verdict: r.finalists.verdict, text: r.finalists.text, alpha: r.finalists.alpha,
          finalists: r.finalists.finalists.map((f) => ({
            rank: f.rank, candidate: f.candidate, widths: f.widths, flops: f.flops, params: f.params, created: f.created,
            seeds: f.runs.map((x) => ({ trial: x.trial, seed: x.seed, seedIndex: x.seedIndex, valError: x.error, testError: x.testError })),
            mean: f.mean, sd: f.sd, difference: f.test?.difference ?? null, interval: f.interval, method: f.test?.method ?? null,
            pairs: f.test?.pairs ?? null, df: f.test?.df ?? null, pValue: f.test?.p ?? null, adjusted: f.adjusted, better: f.better,
          })),
        }
      : null,
    verdict: r.verdict, text: r.text,
  };
}

/** Rung campaigns: the plan, what each rung spent, and the saving against a flat campaign at the final fidelity. */
export function rungLines(config: CampaignConfig, trials: TrialRecord[], account: BudgetAccount): string[] {
  const plan = config.rungs;
  if (!plan) return [];
  const spent = account.rungs.map((r) => `rung ${r.rung}: ${r.trials} trained, ${formatCount(r.images)} images`).join('; ');
  const flat = account.flatImages !== null
    ? `; candidates ${formatCount(account.candidateImages)} images, ${(100 * account.share!).toFixed(1)}% of a flat campaign at the final budget ` +
      `(${formatCount(account.flatImages)}${account.measured ? '' : ', estimated from rung 0'})`
    : '';
  const out = [`rungs: ${plan.rungs} at eta ${plan.eta} (${plan.mode}); ${spent}${flat}`];
  // Finalists with the reference beside them are in the reference's lines; a campaign without a reference lists their progress here.
  if (trials.some((t) => t.role === 'reference')) return out;
  const finalists = trials.filter((t) => t.role === 'finalist');
  for (const of of [...new Set(finalists.map((t) => t.finalistOf!))]) {
    const seeds = finalists.filter((t) => t.finalistOf === of);
    const done = seeds.filter((t) => t.state === 'complete' && t.valError !== null);
    const mean = done.length ? done.reduce((s, t) => s + t.valError!, 0) / done.length : null;
    out.push(`  finalist of trial ${of}: ${done.length} of ${seeds.length} seed(s) done${mean !== null ? `, val ${pct(mean)} (mean)` : ''}`);
  }
  return out;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Summarise a campaign: trial states, progress, best trials so far, and the best against the uniform reference (safe while it runs)')
    .argument('<run>', 'campaign directory (runs/NAME)')
    .option('--json', 'print JSON')
    .option('--top <n>', 'how many of the best trials to list', intFlag('--top', { min: 0 }), 5)
    .option('--queue <url>', "also show the campaign's jobs in this queue (waiting, active, completed, failed) and which hosts work on what")
    .option('--insecure', 'allow a password-less redis:// URL to a host off loopback', false)
    .action(async (run: string, flags: StatusFlags) => {
      const reader = openCampaign(run, { readonly: true });
      try {
        const config = reader.config();
        const counts = reader.counts();
        const trials = reader.trials();
        const rounds = reader.rounds();
        const finished = trials.filter((t) => t.state === 'complete' || t.state === 'failed');
        const trainSeconds = finished.reduce((s, t) => s + (t.wallSeconds ?? 0), 0);
        const top = best(trials, flags.top);
        const failures = trials.filter((t) => t.state === 'failed');
        const reference = compareWithReference(trials, { planned: config.reference?.seeds });
        const budget = budgetAccount(trials, config.rungs);
        const fid = fidelity(trials, { rungs: config.rungs });
        const window = statedWindow(config.space);
        const accuracy = window ? predictionAccuracy(trials) : null;
        if (flags.json) {
          const summary = {
            name: config.name,
            space: config.spacePath,
            net: config.net,
            backend: config.backend,
            seed: config.seed,
            init: config.init ?? { mode: 'scratch' },
            rounds: rounds.map(({ space: _space, ...r }) => r),
            counts,
            trainSeconds,
            best: top,
            reference: reference ? referenceJson(reference) : config.reference?.skipped ? { skipped: config.reference.skipped } : null,
            failed: failures.map((t) => ({ index: t.index, attempts: t.attempts, error: t.error })),
            rungs: config.rungs ?? null,
            budget,
            fidelity: fid,
            latencyPredictor: window ? { window, predictor: config.latencyModel ?? null, accuracy } : null,
          };
          console.log(JSON.stringify(summary, null, 2));
          return;
        }
        const s = config.settings;
        const data = `${s.data.name}${s.data.subset !== undefined ? ` subset ${s.data.subset}` : ''}`;
        const out = [
          `campaign ${config.name}: ${config.spacePath} (${config.net.family}), ${data}, ${describeLength(s)}, ${s.preciseBn ? `precise BN over ${s.preciseBn} batches` : 'BN running averages'}, backend ${config.backend}, seed ${config.seed}`,
          `init: ${describeInit(config)}`,
          `trials: ${counts.complete} complete, ${counts.failed} failed, ${counts.running} running, ${counts.waiting} waiting` +
            `${counts.paused ? `, ${counts.paused} paused between rungs` : ''}${counts.pruned ? `, ${counts.pruned} pruned` : ''}, ${counts.total} total` +
            `; ${rounds.length} round(s); ${formatDuration(trainSeconds)} of training`,
        ];
        out.push(...rungLines(config, trials, budget));
        out.push(`fidelity${config.rungs && config.rungs.rungs > 1 ? ' (population statistics use rung 0)' : ''}:`, ...fidelityLines(fid).map((l) => `  ${l}`));
        if (top.length) {
          out.push(config.rungs && config.rungs.rungs > 1 ? 'best by validation error (top rung):' : 'best by validation error:');
          for (const t of top) {
            out.push(
              `  #${t.index}  val ${t.valError!.toFixed(4)}  test ${t.testError?.toFixed(4) ?? '-'}  ` +
                `flops ${formatCount(t.complexity.flops)}  params ${formatCount(t.complexity.params)}  widths ${t.widths.join(',')}`,
            );
          }
        }
        if (window) out.push(...predictorLines(window, config.latencyModel, accuracy));
        if (reference) out.push(...referenceLines(reference));
        else if (config.reference?.skipped) out.push(`uniform reference: none (${config.reference.skipped})`);
        const running = trials.filter((t) => t.state === 'running');
        if (running.length) {
          out.push(`running: ${running.map((t) => `#${t.index}${t.role === 'reference' ? ' reference' : ''} (epoch ${epochsDone(t.curves)}${epochBound(s) !== undefined ? `/${epochBound(s)}` : ''} done${t.worker ? `, ${t.worker}` : ''})`).join(', ')}`);
        }
        for (const t of failures.slice(0, 5)) out.push(`failed #${t.index}${t.role === 'reference' ? ' (reference)' : ''} after ${t.attempts} attempt(s): ${t.error}`);
        if (flags.queue) out.push(...(await queueLines(config, flags)));
        console.log(out.join('\n'));
      } finally {
        reader.close();
      }
    });
}
