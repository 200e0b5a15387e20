/**
 * Successive halving over training budget: which paused candidates continue to the next rung, which are pruned, and
 * which finalists to retrain, decided from the store's records alone (never from worker timing or order), and the
 * budget each rung spent. Pure functions over plain records.
 */
import { deriveSeed } from '../util/rng.js';
import type { RungsPlan, TrialRecord } from './types.js';

/** What the scheduler decided: trial indices to promote and to prune, and finalists to create (candidate, seed index). */
export interface RungDecision {
  promote: number[];
  prune: number[];
  finalists: Array<{ round: number; finalistOf: number; seedIndex: number }>;
}

/** Rung sizes a campaign of `samples` candidates is planned with: n, ceil(n/eta), ceil(n/eta^2), ... */
export function plannedRungSizes(samples: number, plan: Pick<RungsPlan, 'rungs' | 'eta'>): number[] {
  const sizes = [samples];
  for (let r = 1; r < plan.rungs; r++) sizes.push(Math.ceil(sizes[r - 1] / plan.eta));
  return sizes;
}

/** How many of the n candidates that finished a rung continue to the next one. */
export function promotedCount(n: number, eta: number): number {
  return Math.ceil(n / eta);
}

const resultAt = (t: TrialRecord, rung: number) => t.rungResults.find((r) => r.rung === rung);

/** Candidates ranked by their validation error at `rung`, ties broken by trial index. */
export function rankAtRung(trials: TrialRecord[], rung: number): TrialRecord[] {
  const err = (t: TrialRecord) => {
    const e = resultAt(t, rung)?.valError;
    return e === undefined || !Number.isFinite(e) ? Infinity : e;
  };
  return trials.filter((t) => resultAt(t, rung)).sort((a, b) => err(a) - err(b) || a.index - b.index);
}

/** Whether a trial may still produce a result at `rung` (waiting, running, or failed with attempts left there). */
function pendingAt(t: TrialRecord, rung: number, maxAttempts: number): boolean {
  if (t.rung !== rung) return false;
  return t.state === 'waiting' || t.state === 'running' || (t.state === 'failed' && t.attempts < maxAttempts);
}

/**
 * The scheduler. Per round, over its candidates ('sample'): a rung is closed once no candidate can still finish it
 * (none pending there or below). Sync: a closed rung promotes its best ceil(n/eta) by validation error and prunes the
 * rest, so the outcome is the same for any worker count or order. Async (ASHA): a paused candidate is promoted as soon
 * as it ranks in the top floor(n/eta) of the n finished at its rung so far; once the rung closes, the top ceil(n/eta)
 * still paused are promoted and the rest pruned. When the top rung of a round closes, its best `finalists` candidates
 * get `finalistSeeds` finalist trials each (once).
 */
export function rungDecisions(plan: RungsPlan, trials: TrialRecord[], maxAttempts: number): RungDecision {
  const decision: RungDecision = { promote: [], prune: [], finalists: [] };
  const top = plan.rungs - 1;
  for (const round of [...new Set(trials.map((t) => t.round))].sort((a, b) => a - b)) {
    const candidates = trials.filter((t) => t.round === round && t.role === 'sample');
    let closedBelow = true;
    for (let rung = 0; rung <= top; rung++) {
      // A candidate paused below may still be promoted into this rung: the rung is open until it is decided.
      const closed: boolean = closedBelow && !candidates.some((t) => pendingAt(t, rung, maxAttempts) || (t.state === 'paused' && t.rung < rung));
      closedBelow = closed;
      if (rung === top) {
        const hasFinalists = trials.some((t) => t.round === round && t.role === 'finalist');
        if (closed && plan.finalists > 0 && !hasFinalists) {
          for (const t of rankAtRung(candidates, top).slice(0, plan.finalists)) {
            for (let k = 0; k < plan.finalistSeeds; k++) decision.finalists.push({ round, finalistOf: t.index, seedIndex: k });
          }
        }
        break;
      }
      const ranked = rankAtRung(candidates, rung);
      const paused = (t: TrialRecord) => t.state === 'paused' && t.rung === rung;
      if (closed) {
        const keep = promotedCount(ranked.length, plan.eta);
        ranked.forEach((t, i) => paused(t) && (i < keep ? decision.promote : decision.prune).push(t.index));
      } else if (plan.mode === 'async') {
        const keep = Math.floor(ranked.length / plan.eta);
        ranked.forEach((t, i) => paused(t) && i < keep && decision.promote.push(t.index));
      }
    }
  }
  return decision;
}

/**
 * The seed of seed index k for a finalist: the reference's seed k where the campaign trains that reference seed (so
 * finalist and reference see the same data order and augmentation), else one derived from the campaign seed and k.
 */
export function seedForIndex(k: number, trials: TrialRecord[], campaignSeed: number): number {
  return trials.find((t) => t.role === 'reference' && t.seedIndex === k)?.seed ?? deriveSeed(campaignSeed, `seed-index/${k}`);
}

/** Training images one rung spent, over every trial that trained it. */
export interface RungSpend {
  rung: number;
  /** Trials that finished this rung. */
  trials: number;
  images: number;
}

/** A campaign's training budget: what its candidates spent per rung, against a flat campaign at the final fidelity. */
export interface BudgetAccount {
  rungs: RungSpend[];
  /** Images the candidates' rungs spent in all. */
  candidateImages: number;
  /** Images of one candidate trained at the final budget (a top-rung candidate's rungs added up, or estimated). */
  fullRunImages: number | null;
  /** Whether fullRunImages was measured on a candidate that reached the top rung (else scaled from rung 0). */
  measured: boolean;
  /** What training every candidate at the final budget would have cost: candidates × fullRunImages. */
  flatImages: number | null;
  /** candidateImages / flatImages. */
  share: number | null;
  /** Images of the reference seeds and of the finalists (trained at the final budget in both kinds of campaign). */
  referenceImages: number;
  finalistImages: number;
}

/**
 * The budget account of a campaign's trials (plain records: the analysis may call it as it is). A flat campaign is its
 * own single rung, at share 1 once every candidate is trained.
 */
export function budgetAccount(trials: TrialRecord[], plan?: Pick<RungsPlan, 'rungs' | 'eta'>): BudgetAccount {
  const rungsCount = plan?.rungs ?? 1;
  const candidates = trials.filter((t) => t.role === 'sample');
  const images = (ts: TrialRecord[]) => ts.reduce((n, t) => n + t.rungResults.reduce((m, r) => m + r.images, 0), 0);
  const rungs: RungSpend[] = Array.from({ length: rungsCount }, (_, rung) => {
    const results = candidates.flatMap((t) => t.rungResults.filter((r) => r.rung === rung));
    return { rung, trials: results.length, images: results.reduce((n, r) => n + r.images, 0) };
  });
  const candidateImages = rungs.reduce((n, r) => n + r.images, 0);
  const topTrial = candidates.find((t) => t.rungResults.length === rungsCount && t.rungResults.every((r) => r.images > 0));
  const rung0 = candidates.find((t) => t.rungResults[0]?.rung === 0 && t.rungResults[0].images > 0);
  const fullRunImages = topTrial
    ? topTrial.rungResults.reduce((n, r) => n + r.images, 0)
    : rung0 && plan
      ? rung0.rungResults[0].images * plan.eta ** (rungsCount - 1)
      : null;
  const flatImages = fullRunImages === null ? null : fullRunImages * candidates.length;
  return {
    rungs,
    candidateImages,
    fullRunImages,
    measured: topTrial !== undefined,
    flatImages,
    share: flatImages ? candidateImages / flatImages : null,
    referenceImages: images(trials.filter((t) => t.role === 'reference')),
    finalistImages: images(trials.filter((t) => t.role === 'finalist')),
  };
}
