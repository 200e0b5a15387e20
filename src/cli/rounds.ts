/**
 * The search loop of `search --rounds R`: train a round, refine its space from the round's trials, sample the next
 * round from the child space, and compare each round's error EDF with its parent's. It lives above campaign and
 * analysis because it drives both (analysis never imports the campaign runner or training).
 */
import { join } from 'node:path';
import { compareRounds } from '../analysis/compare.js';
import { lastRound, loadCampaign, type LoadedCampaign } from '../analysis/campaign.js';
import { observations } from '../analysis/population.js';
import { refineCampaign } from '../analysis/refine-campaign.js';
import type { RefineRule } from '../analysis/refine.js';
import { runCampaign, type RunOptions, type RunSummary } from '../campaign/campaign.js';
import { roundSpaceFile } from '../campaign/create.js';
import { CampaignLock } from '../campaign/lock.js';
import { openCampaign } from '../campaign/store.js';
import type { RoundRecord } from '../campaign/types.js';
import { compileSpace } from '../space/compile.js';
import { loadSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import { UserError } from '../util/errors.js';
import { deriveSeed } from '../util/rng.js';

export interface RoundsOptions {
  /** Total rounds, the first included. */
  rounds: number;
  /** Candidates per refined round (default: the campaign's --samples). */
  samples?: number;
  rules?: readonly RefineRule[];
  log: (line: string) => void;
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(2)}%`);

/** One line per round after the first: its validation-error EDF against its parent round's. */
export function roundComparisons(c: LoadedCampaign): string[] {
  const rounds = [...new Set(c.trials.map((t) => t.round))].sort((a, b) => a - b);
  const lines: string[] = [];
  for (const r of rounds.slice(1)) {
    const errors = (k: number) => observations(c.trials.filter((t) => t.round === k)).map((o) => o.error);
    const cmp = compareRounds(errors(r - 1), errors(r), { seed: `${c.config.seed}/round${r}` });
    if (!cmp) continue;
    lines.push(
      `round ${r} vs round ${r - 1}: n ${cmp.child.n} vs ${cmp.parent.n}, ` +
        `min val error ${pct(cmp.child.min)} vs ${pct(cmp.parent.min)}, ` +
        `mean ${pct(cmp.child.mean)} vs ${pct(cmp.parent.mean)}, KS distance ${cmp.ks.toFixed(3)} (permutation p = ${cmp.pValue.toFixed(3)}, ${cmp.permutations} shuffles)`,
    );
  }
  return lines;
}

/** Refines round `round` into the next round's space (in the run directory), samples it and stores the new round. */
function startNextRound(c: LoadedCampaign, round: number, opts: RoundsOptions): RoundRecord {
  const next = round + 1;
  const spaceFile = roundSpaceFile(next);
  const out = join(c.dir, spaceFile);
  // The file may exist from a run that died before storing the round; the round is not in the store, so replace it.
  const refined = refineCampaign(c, { round, out, name: `${c.name}.r${next}`, rules: opts.rules, force: true });
  for (const rule of refined.outcomes) {
    opts.log(`round ${next} rule ${rule.rule}: ${rule.applied ? 'applied' : 'skipped'}: ${rule.reason}`);
  }
  opts.log(`round ${next} space ${out} keeps ~${pct(refined.kept.share)} of round ${round}'s space`);

  const space = compileSpace(loadSpace(out));
  const samples = opts.samples ?? c.config.samples;
  const sampleSeed = deriveSeed(c.config.seed, `round${next}`);
  // Earlier rounds' subnetworks are not trained again.
  const sample = sampleSpace(space, samples, sampleSeed, { exclude: c.trials.map((t) => t.widths) });
  if (sample.shortfall) opts.log(`round ${next}: ${sample.shortfall}`);
  const lock = CampaignLock.acquire(c.dir);
  const store = openCampaign(c.dir);
  try {
    const first = store.nextTrialIndex();
    const record: RoundRecord = {
      round: next,
      spaceFile,
      space: refined.child,
      samples: sample.configs.length,
      sampleSeed,
      sampleAttempts: sample.attempts,
      acceptanceRate: sample.acceptanceRate,
      createdAt: new Date().toISOString(),
    };
    store.addRound(
      record,
      sample.configs.map((cfg, i) => ({
        index: first + i,
        widths: cfg.widths,
        complexity: cfg.complexity,
        seed: deriveSeed(c.config.seed, first + i),
      })),
    );
    opts.log(`round ${next}: sampled ${sample.configs.length} candidates (acceptance ${pct(sample.acceptanceRate)})`);
    return record;
  } finally {
    store.close();
    lock.release();
  }
}

/** Runs (or continues) a campaign until it has `rounds` rounds, each trained to the end. */
export async function runRounds(dir: string, run: RunOptions, opts: RoundsOptions): Promise<RunSummary> {
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new UserError(`--rounds must be a positive integer, got ${opts.rounds}`);
  let summary = await runCampaign(dir, run);
  for (;;) {
    if (summary.interrupted) return summary;
    const c = loadCampaign(dir);
    const round = lastRound(c);
    if (round + 1 >= opts.rounds) break;
    const unfinished = c.trials.filter((t) => t.round === round && (t.state === 'pending' || t.state === 'running')).length;
    if (unfinished) throw new Error(`round ${round} still has ${unfinished} unfinished trial(s) after the pool stopped`);
    startNextRound(c, round, opts);
    summary = await runCampaign(dir, run);
  }
  for (const line of roundComparisons(loadCampaign(dir))) opts.log(line);
  return summary;
}
