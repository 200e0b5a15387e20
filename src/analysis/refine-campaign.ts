/** Refines the space of a campaign's round into a child space file: the step `refine` and `search --rounds` share. */
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { LatencyPredictor } from '../space/compile.js';
import { writeSpace, relativeParent } from '../space/load.js';
import { UserError } from '../util/errors.js';
import { analyseCampaign, type AnalysisOptions } from './analyse.js';
import { lastRound, roundSpace, type LoadedCampaign } from './campaign.js';
import { refineSpace, type Refinement, type RefineRule } from './refine.js';

export interface RefineCampaignOptions {
  rules?: readonly RefineRule[];
  /** Round whose trials and space are refined (default: the last). */
  round?: number;
  /** Where the child space is written; default spaces/<run>.r<k>.json. */
  out?: string;
  force?: boolean;
  /** Child space name; default from the output file's name. */
  name?: string;
  analysis?: AnalysisOptions;
  date?: string;
  /** A latency regime's predictor, for the kept-share estimate (see keptShare). */
  predictLatency?: LatencyPredictor;
}

/** The generation number of a refined space name ('x.r2' -> 2, 'x' -> 0). */
export function generation(name: string): number {
  const m = /\.r(\d+)$/.exec(name);
  return m ? Number(m[1]) : 0;
}

export function defaultRefinedPath(c: LoadedCampaign, parentName: string): string {
  return `spaces/${c.name}.r${generation(parentName) + 1}.json`;
}

export interface RefinedSpace extends Refinement {
  out: string;
  parentPath: string;
  round: number;
}

export function refineCampaign(c: LoadedCampaign, options: RefineCampaignOptions = {}): RefinedSpace {
  const round = options.round ?? lastRound(c);
  if (!c.rounds.some((r) => r.round === round) && !c.trials.some((t) => t.round === round)) {
    throw new UserError(`${c.dir} has no round ${round}`);
  }
  const rung = options.analysis?.rung ?? 0;
  const top = (c.config.rungs?.rungs ?? 1) - 1;
  if (rung > top) {
    throw new UserError(top === 0 ? `--rung ${rung}: ${c.dir} trains no rungs (only rung 0)` : `--rung ${rung}: ${c.dir} has rungs 0 to ${top}`);
  }
  const { loaded, path: parentPath } = roundSpace(c, round);
  const out = options.out ?? defaultRefinedPath(c, loaded.file.name);
  if (!out.endsWith('.json')) throw new UserError(`--out must name a .json file, got ${out}`);
  // Checked before the (slower) analysis, so nothing is computed for a file that will not be written.
  if (existsSync(out) && !options.force) throw new UserError(`${out} already exists (use --force to replace it)`);
  const analysis = analyseCampaign({ name: c.name, net: c.config.net, trials: c.trials, seed: c.config.seed }, { ...options.analysis, rounds: [round] });
  if (!analysis.obs.length) {
    throw new UserError(rung ? `${c.dir}: round ${round} has no candidate with a result at rung ${rung} yet to refine from` : `${c.dir}: round ${round} has no completed trials to refine from`);
  }
  const name = options.name ?? out.replace(/^.*\//, '').replace(/\.json$/, '');
  const refinement = refineSpace(loaded, analysis, {
    rules: options.rules,
    name,
    parentRef: relativeParent(out, parentPath),
    // Relative to the child's folder, like `parent`, so that the file travels with the repository.
    campaign: { dir: relative(dirname(resolve(out)), resolve(c.dir)) || '.', name: c.config.name, round, seed: c.config.seed, space: loaded.file.name },
    date: options.date,
    seed: c.config.seed,
    ratio: options.analysis?.ratio,
    ...(options.predictLatency ? { predictLatency: options.predictLatency } : {}),
  });
  writeSpace(out, refinement.child, { force: options.force });
  return { ...refinement, out, parentPath, round };
}
