/**
 * The method's loop as a campaign operation: train a round, refine its space, sample the next round from the
 * child, repeat. The coordinator lock is held across all rounds; the refinement itself is a hook (analysis
 * sits above the campaign layer and supplies it).
 */
import { join } from 'node:path';
import type { CompiledSpace } from '../space/compile.js';
import { sampleSpace } from '../space/sampler.js';
import { UserError } from '../util/errors.js';
import { deriveSeed } from '../util/rng.js';
import { runCampaign, type RunOptions, type RunSummary } from './campaign.js';
import { CampaignLock } from './lock.js';
import { openCampaign, type CampaignReader, type CampaignStore, type NewTrial } from './store.js';
import type { RoundRecord } from './types.js';

/** A round's space file inside the run directory. */
export function roundSpaceFile(round: number): string {
  return `space-r${round}.json`;
}

/** What a refinement hands the loop: the child space (already written to `out`) and it compiled. */
export interface RefinedRound {
  space: unknown;
  compiled: CompiledSpace;
}

/** Refines round `round` of the campaign in `dir` into the space file `out` (replacing a leftover one). */
export type RefineRound = (dir: string, round: number, out: string) => RefinedRound;

export interface RoundsOptions {
  /** Total rounds, the first included. */
  rounds: number;
  /** Candidates per refined round (default: the campaign's samples). */
  samples?: number;
  refine: RefineRound;
  log: (line: string) => void;
}

/**
 * Samples `samples` candidates from `space` into a new round, excluding subnetworks already trained. Trial indices
 * continue the campaign's, and each trial seed derives from the campaign seed and its index alone.
 */
export function sampleRoundTrials(
  space: CompiledSpace,
  opts: { campaignSeed: number; firstIndex: number; samples: number; sampleSeed: number; exclude?: number[][] },
) {
  const sample = sampleSpace(space, opts.samples, opts.sampleSeed, { exclude: opts.exclude });
  const trials: NewTrial[] = sample.configs.map((c, i) => ({
    index: opts.firstIndex + i,
    widths: c.widths,
    complexity: c.complexity,
    seed: deriveSeed(opts.campaignSeed, opts.firstIndex + i),
    ...(c.predictedLatencyMs !== undefined ? { predictedLatencyMs: c.predictedLatencyMs } : {}),
  }));
  return { sample, trials };
}

/** Creates round `round` from a refined space: samples it and stores the round with its trials in one transaction. */
export function createRound(store: CampaignStore, round: number, refined: RefinedRound, samples: number, log: (l: string) => void): RoundRecord {
  const config = store.config();
  const sampleSeed = deriveSeed(config.seed, `round${round}`);
  const { sample, trials } = sampleRoundTrials(refined.compiled, {
    campaignSeed: config.seed,
    firstIndex: store.nextTrialIndex(),
    samples,
    sampleSeed,
    // Earlier rounds' candidates are not trained again (the uniform reference does not shape the population).
    exclude: store.trials({ role: 'sample' }).map((t) => t.widths),
  });
  if (sample.shortfall) log(`round ${round}: ${sample.shortfall}`);
  if (!trials.length) throw new UserError(`round ${round}: the refined space yielded no new candidate (${sample.shortfall ?? 'empty space'})`);
  const record: RoundRecord = {
    round,
    spaceFile: roundSpaceFile(round),
    space: refined.space,
    samples: trials.length,
    sampleSeed,
    sampleAttempts: sample.attempts,
    acceptanceRate: sample.acceptanceRate,
    createdAt: new Date().toISOString(),
  };
  store.addRound(record, trials);
  log(`round ${round}: sampled ${trials.length} candidates (acceptance ${(100 * sample.acceptanceRate).toFixed(2)}%)`);
  return record;
}

function lastRound(reader: CampaignReader): number {
  return Math.max(0, ...reader.rounds().map((r) => r.round));
}

/** Runs (or continues) a campaign until it has `rounds` rounds, each trained to the end, under one lock. */
export async function runRounds(dir: string, run: RunOptions, opts: RoundsOptions): Promise<RunSummary> {
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new UserError(`--rounds must be a positive integer, got ${opts.rounds}`);
  const lock = CampaignLock.acquire(dir);
  try {
    let summary = await runCampaign(dir, { ...run, lockHeld: true });
    for (;;) {
      if (summary.interrupted) return summary;
      const store = openCampaign(dir);
      try {
        const round = lastRound(store);
        if (round + 1 >= opts.rounds) break;
        const unfinished = store.trials({ round }).filter((t) => t.state === 'waiting' || t.state === 'running' || t.state === 'paused').length;
        if (unfinished) throw new Error(`round ${round} still has ${unfinished} unfinished trial(s) after the pool stopped`);
        const out = join(dir, roundSpaceFile(round + 1));
        const refined = opts.refine(dir, round, out);
        createRound(store, round + 1, refined, opts.samples ?? store.config().samples, opts.log);
      } finally {
        store.close();
      }
      summary = await runCampaign(dir, { ...run, lockHeld: true });
    }
    return summary;
  } finally {
    lock.release();
  }
}
