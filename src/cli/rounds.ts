/**
 * The CLI side of `search --rounds R`: supplies the campaign's rounds loop with the analysis layer's refinement
 * and prints each round's error EDF against its parent's (analysis never imports the campaign runner or training).
 */
import { successiveRounds } from '../analysis/compare.js';
import { loadCampaign, type LoadedCampaign } from '../analysis/campaign.js';
import { refineCampaign } from '../analysis/refine-campaign.js';
import type { RefineRule } from '../analysis/refine.js';
import type { RunOptions, RunSummary } from '../campaign/campaign.js';
import { runRounds as runCampaignRounds, type RefineRound } from '../campaign/rounds.js';
import { compileSpace, type LatencyPredictor } from '../space/compile.js';
import { loadSpace } from '../space/load.js';

export interface RoundsOptions {
  /** Total rounds, the first included. */
  rounds: number;
  /** Candidates per refined round (default: the campaign's --samples). */
  samples?: number;
  rules?: readonly RefineRule[];
  /** The network's latency predictor, for spaces with a latency window (a refined space keeps its parent's). */
  predictLatency?: LatencyPredictor;
  log: (line: string) => void;
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(2)}%`);

/** Two lines per round after the first: its rung-0 validation errors against its parent round's, and whether it is better. */
export function roundComparisons(c: LoadedCampaign): string[] {
  return successiveRounds(c.trials, c.config.seed).flatMap(({ round: r, comparison: cmp }) => [
    `round ${r} vs round ${r - 1}: n ${cmp.child.n} vs ${cmp.parent.n}, ` +
      `min val error ${pct(cmp.child.min)} vs ${pct(cmp.parent.min)}, ` +
      `mean ${pct(cmp.child.mean)} vs ${pct(cmp.parent.mean)}, EDF gap D+ ${cmp.lead.toFixed(3)} (one-sided permutation p = ${cmp.leadPValue.toFixed(3)}), ` +
      `KS distance ${cmp.ks.toFixed(3)} (permutation p = ${cmp.pValue.toFixed(3)}, ${cmp.permutations} shuffles)`,
    `round ${r}: ${cmp.text}`,
  ]);
}

/** The refinement step of the loop: analysis rules applied to a finished round, logged rule by rule. */
function refineStep(opts: RoundsOptions): RefineRound {
  return (dir, round, out) => {
    const c = loadCampaign(dir);
    const next = round + 1;
    // The file may exist from a run that died before storing the round; the round is not in the store, so replace it.
    const refined = refineCampaign(c, { round, out, name: `${c.name}.r${next}`, rules: opts.rules, force: true, predictLatency: opts.predictLatency });
    for (const rule of refined.outcomes) opts.log(`round ${next} rule ${rule.rule}: ${rule.applied ? 'applied' : 'skipped'}: ${rule.reason}`);
    opts.log(`round ${next} space ${out} keeps ~${pct(refined.kept.share)} of round ${round}'s space`);
    return { space: refined.child, compiled: compileSpace(loadSpace(out), { predictLatency: opts.predictLatency }) };
  };
}

/** Runs (or continues) a campaign until it has `rounds` rounds, then prints the round comparisons. */
export async function runRounds(dir: string, run: RunOptions, opts: RoundsOptions): Promise<RunSummary> {
  const summary = await runCampaignRounds(dir, run, { rounds: opts.rounds, samples: opts.samples, refine: refineStep(opts), log: opts.log });
  if (!summary.interrupted) for (const line of roundComparisons(loadCampaign(dir))) opts.log(line);
  return summary;
}
