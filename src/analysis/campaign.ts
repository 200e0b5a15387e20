/** Reads a campaign directory for analysis through the store's read-only API (never through training code). */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openCampaign } from '../campaign/store.js';
import type { CampaignConfig, RoundRecord, TrialRecord } from '../campaign/types.js';
import { parseSpace, type LoadedSpace } from '../space/load.js';
import { UserError } from '../util/errors.js';

export interface LoadedCampaign {
  dir: string;
  /** The run directory's name, how reports and refined spaces refer to the campaign. */
  name: string;
  config: CampaignConfig;
  rounds: RoundRecord[];
  trials: TrialRecord[];
}

export function loadCampaign(dir: string): LoadedCampaign {
  if (!existsSync(dir)) throw new UserError(`campaign directory ${dir} does not exist`);
  const reader = openCampaign(dir, { readonly: true });
  try {
    return { dir, name: basename(resolve(dir)), config: reader.config(), rounds: reader.rounds(), trials: reader.trials() };
  } finally {
    reader.close();
  }
}

/** The space a round was sampled from (its stored copy) and the path of its file, for a child's `parent`. */
export function roundSpace(c: LoadedCampaign, round: number): { loaded: LoadedSpace; path: string } {
  const r = c.rounds.find((x) => x.round === round);
  const inRun = r ? join(c.dir, r.spaceFile) : null;
  // Prefer the copy in the run directory; fall back to the file the campaign was launched with.
  const path = inRun && existsSync(inRun) ? inRun : c.config.spacePath;
  const json = r?.space ?? c.config.space;
  const loaded = parseSpace(json, path || `${c.dir} (stored space)`);
  return { loaded, path };
}

/** A campaign's init mode in a few words, for labels of compared populations: 'scratch', 'inherit l1', 'distill'. */
export function initLabel(config: Pick<CampaignConfig, 'init'>): string {
  const init = config.init ?? { mode: 'scratch' };
  if (init.mode === 'inherit') return `inherit ${init.criterion}${init.combine !== 'sum' ? `/${init.combine}` : ''}`;
  return init.mode;
}

/** A campaign's init mode in one line, for status. */
export function describeInit(config: Pick<CampaignConfig, 'init'>): string {
  const init = config.init ?? { mode: 'scratch' };
  if (init.mode === 'scratch') return 'scratch (seeded initialisation)';
  const parent = init.parent !== undefined ? `parent ${init.parent} (copied into parent/)` : `parent trained by the campaign in parent/${init.mode === 'inherit' && init.parentEpochs !== undefined ? ` for ${init.parentEpochs} epoch(s)` : ''}`;
  if (init.mode === 'inherit') return `inherit from ${parent}: the top channels by ${init.criterion} (${init.combine}, scores in parent/scores.json), then fine-tuned`;
  return `distill ${parent} to each trial's widths with ${init.students} student(s), no labels (validation error is evaluation)`;
}

export function lastRound(c: LoadedCampaign): number {
  return c.rounds.length ? Math.max(...c.rounds.map((r) => r.round)) : Math.max(0, ...c.trials.map((t) => t.round));
}
