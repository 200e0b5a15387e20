/**
 * Refinement: a child space narrowed around what a campaign's winners share. Rules are chosen on a seeded
 * random half of the trials and must be confirmed on the other half (so the trials that suggest a rule
 * never also judge it); the confirmations are Holm-corrected, so on noise the child differs from its parent
 * at most 10% of the time. Each rule records the statistics behind it or the reason it was skipped.
 */
import * as ss from 'simple-statistics';
import type { ChannelGroup, WidthConfig } from '../nets/types.js';
import { compileSpace, selects, type CompiledSpace } from '../space/compile.js';
import { parseSpace, type LoadedSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import type { Constraint, SamplerSpec, SpaceFile } from '../space/schema.js';
import { UserError } from '../util/errors.js';
import { makeRng } from '../util/rng.js';
import type { CampaignAnalysis } from './analyse.js';
import { goodRange } from './bootstrap.js';
import { analyseRatio, RATIO_DEFAULTS, type RatioOptions } from './buckets.js';
import { trialMetrics } from './metrics.js';
import type { Observation } from './population.js';
import { isMonotone, stageGroups } from './profiles.js';
import { holmAdjust, rankSumLess, spearmanPValue } from './significance.js';

export const REFINE_RULES = ['ratio', 'monotone', 'ranges'] as const;
export type RefineRule = (typeof REFINE_RULES)[number];

/** Rules that existed once, and why they went: asking for one is an error that says so. */
export const REMOVED_RULES: Record<string, string> = {
  params:
    'the params rule was removed: every space has a FLOPs regime, and inside it a params window is a FLOPs/param window, ' +
    'which the ratio rule already tests with a stricter standard (use ratio)',
};

export const REFINE_DEFAULTS = {
  /** Level of each rule's test on the selection half (Holm-corrected across groups for ranges). */
  selectAlpha: 0.1,
  /** Family-wise level of the confirmations on the held-out half (Holm across every proposed change). */
  confirmAlpha: 0.1,
  /** A group's keep range is narrowed only where the good range keeps at most this share of its widths. */
  rangeShare: 0.75,
};

/** A proposed change's test on the held-out half: do held-out trials the change keeps beat those it removes? */
export interface Confirmation {
  /** Held-out trials inside and outside the change. */
  inside: number;
  outside: number;
  meanInside: number | null;
  meanOutside: number | null;
  /** One-sided rank-sum p-value (inside has lower error), and Holm-adjusted over every proposed change. */
  pValue: number;
  adjustedP: number;
  /** Smallest p-value the test could reach with these counts. */
  minP: number;
  confirmed: boolean;
}

export interface RuleOutcome {
  rule: RefineRule;
  applied: boolean;
  /** Why the rule was applied or skipped, in words. */
  reason: string;
  /** The statistics behind the decision (on the selection half). */
  evidence: Record<string, unknown>;
  /** The rule proposed a change on the selection half (applied says whether the held-out half confirmed it). */
  proposed?: boolean;
  /** The held-out test of the rule's change (ranges: per group, in evidence.groups); absent where nothing was proposed. */
  confirmation?: Confirmation;
}

export interface RefineOptions {
  rules?: readonly RefineRule[];
  /** Name of the child space. */
  name: string;
  /** The parent as the child file should name it (a path relative to the child's folder). */
  parentRef: string;
  /** Campaign facts recorded in the provenance (directory relative to the child, name, rounds). */
  campaign: Record<string, unknown>;
  date?: string;
  /** Seeds the split into halves, the bootstraps and the kept-share estimate. */
  seed?: number;
  /** Parent samples used to estimate the kept share. */
  keptSamples?: number;
  rangeShare?: number;
  selectAlpha?: number;
  confirmAlpha?: number;
  /** Options of the ratio analysis on the selection half (buckets, resamples). */
  ratio?: RatioOptions;
}

export interface Refinement {
  child: SpaceFile;
  outcomes: RuleOutcome[];
  /** Share of parent samples the child contains, and how many parent samples it rests on. */
  kept: { share: number; samples: number };
}

const round = (x: number, digits = 4) => Number(x.toPrecision(digits));

/** Intersection of a new absolute window with an existing one. */
function narrow(lo: number, hi: number, existing: { min: number; max: number }): [number, number] {
  return [Math.max(lo, existing.min), Math.min(hi, existing.max)];
}

/** The seeded split: trials that choose the rules and trials that confirm them (the first half takes the odd one). */
export function splitHalves(obs: readonly Observation[], seed: number): { selection: Observation[]; confirmation: Observation[] } {
  const rng = makeRng(seed, 'refine/split');
  const order = obs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const cut = Math.ceil(obs.length / 2);
  const pick = (ids: number[]) => ids.sort((a, b) => a - b).map((i) => obs[i]);
  return { selection: pick(order.slice(0, cut)), confirmation: pick(order.slice(cut)) };
}

/** A change a rule proposes on the selection half: how it edits the child, and which trials it keeps. */
interface Proposal {
  rule: RefineRule;
  /** For ranges, the group the change narrows. */
  group?: string;
  keeps: (o: Observation) => boolean;
  apply: (child: SpaceFile) => void;
  evidence: Record<string, unknown>;
  /** For ranges, the group's own entry inside `evidence.groups` (its confirmation is recorded there). */
  groupEvidence?: Record<string, unknown>;
  reason: string;
}

/** What the rules read of a campaign's analysis (the calibration builds just this, cheaply). */
export type RuleInput = Pick<CampaignAnalysis, 'obs' | 'spec' | 'originalRatio' | 'profile'>;

type Decision = { proposals: Proposal[]; skipped?: undefined } | { proposals?: undefined; skipped: RuleOutcome };

function ratioProposal(sel: readonly Observation[], a: RuleInput, parent: CompiledSpace, seed: number, options: RatioOptions): Decision {
  const r = analyseRatio(sel, { seed, originalRatio: a.originalRatio, ...options });
  const opt = r.optimum;
  if (!opt) return { skipped: { rule: 'ratio', applied: false, reason: `no supported optimal FLOPs/param ratio on the selection half: ${r.reasons.join('; ')}`, evidence: { n: r.n } } };
  // The window holds every ratio that is plausibly optimal (bootstrap interval) or practically as good (band).
  const [lo, hi] = narrow(Math.min(opt.interval.lo, opt.band[0]), Math.max(opt.interval.hi, opt.band[1]), parent.flopsPerParam);
  const keeps = (o: Observation) => o.ratio >= lo && o.ratio <= hi;
  const inside = sel.filter(keeps).length;
  const evidence = {
    optimum: round(opt.ratio), interval: [round(opt.interval.lo), round(opt.interval.hi)], band: opt.band.map((x) => round(x)),
    tolerance: opt.tolerance, curvature: round(opt.curvature), interiorShare: opt.interiorShare, originalRatio: round(a.originalRatio),
    window: [round(lo), round(hi)], selectionInside: inside, selection: sel.length,
  };
  if (inside === sel.length) return { skipped: { rule: 'ratio', applied: false, reason: 'the optimum window covers every sampled ratio, so it would remove nothing', evidence } };
  return {
    proposals: [{
      rule: 'ratio', keeps, evidence,
      apply: (child) => (child.regime.flopsPerParam = { min: round(lo, 6), max: round(hi, 6) }),
      reason: `error is lowest at FLOPs/param ${opt.ratio.toFixed(1)} (95% interval ${opt.interval.lo.toFixed(1)}-${opt.interval.hi.toFixed(1)}, ` +
        `${(100 * opt.interiorShare).toFixed(0)}% of resamples interior; original network ${a.originalRatio.toFixed(1)}); window ${lo.toFixed(1)}-${hi.toFixed(1)}`,
    }],
  };
}

function monotoneProposal(sel: readonly Observation[], a: RuleInput, parent: LoadedSpace, alpha: number): Decision {
  const chain = stageGroups(a.spec.groups);
  if (chain.length < 2) return { skipped: { rule: 'monotone', applied: false, reason: 'the network has fewer than two stage groups', evidence: {} } };
  const exists = parent.file.constraints.some((c) => c.rule === 'non-decreasing' && c.of === 'width' && JSON.stringify(c.select) === JSON.stringify({ kinds: ['stage'] }));
  if (exists) return { skipped: { rule: 'monotone', applied: false, reason: 'the parent already requires non-decreasing stage widths', evidence: {} } };
  const keeps = (o: Observation) => isMonotone(o.widths, chain);
  const yes = sel.filter(keeps).map((o) => o.error);
  const no = sel.filter((o) => !keeps(o)).map((o) => o.error);
  // Descriptive: winners' share against the other trials' (winners are not counted among those they are compared with).
  const m = a.profile.monotone;
  const winnersVsRest = m && a.profile.n > a.profile.k
    ? { winners: round(m.winners, 3), rest: round((m.all * a.profile.n - m.winners * a.profile.k) / (a.profile.n - a.profile.k), 3), k: a.profile.k }
    : null;
  const evidence: Record<string, unknown> = { groups: chain.map((g) => g.name), monotone: yes.length, other: no.length, winnersVsRest };
  if (!no.length) return { skipped: { rule: 'monotone', applied: false, reason: 'every trial of the selection half already has non-decreasing stage widths', evidence } };
  if (!yes.length) return { skipped: { rule: 'monotone', applied: false, reason: 'no trial of the selection half has non-decreasing stage widths', evidence } };
  // Monotone trials against the others, by rank: a test whose smallest p-value is far below its level at these sizes.
  const test = rankSumLess(yes, no);
  Object.assign(evidence, { meanMonotone: round(ss.mean(yes)), meanOther: round(ss.mean(no)), pValue: round(test.p, 4), minP: round(test.minP, 3) });
  const summary = `trials with non-decreasing stage widths: mean error ${(100 * ss.mean(yes)).toFixed(2)}% (${yes.length}) against ${(100 * ss.mean(no)).toFixed(2)}% (${no.length}) on the selection half, rank-sum p = ${test.p.toFixed(3)}`;
  if (test.p > alpha) return { skipped: { rule: 'monotone', applied: false, reason: `${summary}; need p <= ${alpha}`, evidence } };
  const constraint: Constraint = { rule: 'non-decreasing', select: { kinds: ['stage'] }, of: 'width' };
  return { proposals: [{ rule: 'monotone', keeps, evidence, reason: summary, apply: (child) => child.constraints.push(constraint) }] };
}

/** The parent's allowed widths of a group that fall inside [lo, hi] keep ratio; never empty. */
function widthsWithin(allowed: readonly number[], group: ChannelGroup, lo: number, hi: number): number[] {
  const inside = allowed.filter((w) => w / group.base >= lo - 1e-9 && w / group.base <= hi + 1e-9);
  if (inside.length) return inside;
  const mid = ((lo + hi) / 2) * group.base;
  return [allowed.reduce((b, w) => (Math.abs(w - mid) < Math.abs(b - mid) ? w : b))];
}

/**
 * Whether a narrowed range lies on the side a correlation favours: where error falls with keep (rho < 0)
 * the narrowest widths must go and the range's middle sit at or above the parent's, and vice versa.
 */
export function directionConsistent(rho: number, parentWidths: readonly number[], kept: readonly number[]): boolean {
  const lo = parentWidths[0];
  const hi = parentWidths[parentWidths.length - 1];
  const keptMid = (kept[0] + kept[kept.length - 1]) / 2;
  return rho < 0 ? kept[0] > lo && keptMid >= (lo + hi) / 2 : kept[kept.length - 1] < hi && keptMid <= (lo + hi) / 2;
}

function rangesProposal(sel: readonly Observation[], a: RuleInput, parent: CompiledSpace, seed: number, share: number, alpha: number): Decision {
  const metrics = new Map(trialMetrics(a.spec.groups).map((m) => [m.key, m]));
  const errors = sel.map((o) => o.error);
  const tested = parent.choices
    .filter((c) => c.widths.length >= 2)
    .map((choice) => {
      const keep = sel.map((o) => o.widths[choice.group.id] / choice.group.base);
      const rho = new Set(keep).size > 1 && new Set(errors).size > 1 ? ss.sampleRankCorrelation(keep, errors) : NaN;
      return { choice, keep, rho, p: Number.isFinite(rho) ? spearmanPValue(rho, sel.length) : 1 };
    });
  const adjusted = holmAdjust(tested.map((t) => t.p));
  const groups: Record<string, unknown> = {};
  const proposals: Proposal[] = [];
  tested.forEach((t, i) => {
    const g = t.choice.group;
    const entry: Record<string, unknown> = { spearman: round(t.rho, 3), pValue: round(t.p, 4), holmP: round(adjusted[i], 4) };
    groups[g.name] = entry;
    if (adjusted[i] > alpha) return;
    const metric = metrics.get(`keep.${g.name}`);
    const range = metric ? goodRange(t.keep, errors, { seed, stream: metric.key }) : null;
    if (!range) return void (entry.verdict = 'no good range');
    const kept = widthsWithin(t.choice.widths, g, range.lo, range.hi);
    const widths = t.choice.widths;
    Object.assign(entry, { goodRange: [round(range.lo, 3), round(range.mid, 3), round(range.hi, 3)], parentWidths: [widths[0], widths[widths.length - 1]], childWidths: [kept[0], kept[kept.length - 1]] });
    if (kept.length > share * widths.length) return void (entry.verdict = `the good range keeps more than ${(100 * share).toFixed(0)}% of the widths`);
    if (!directionConsistent(t.rho, widths, kept)) return void (entry.verdict = `the good range lies against the direction of the correlation (rho ${t.rho.toFixed(2)})`);
    entry.verdict = 'proposed';
    const lo = kept[0];
    const hi = kept[kept.length - 1];
    const parentSampler = parent.loaded.file.samplers.find((s) => selects(s.select, g)) ?? parent.loaded.file.samplers[0];
    const sampler: SamplerSpec = { select: { names: [g.name] }, keep: { min: lo / g.base, max: hi / g.base }, distribution: t.choice.distribution, quantum: parentSampler.quantum };
    proposals.push({
      rule: 'ranges', group: g.name, evidence: {}, groupEvidence: entry,
      keeps: (o) => o.widths[g.id] >= lo && o.widths[g.id] <= hi,
      // A sampler for this group alone, placed first so that it wins over the parent's broader selection.
      apply: (child) => (child.samplers = [sampler, ...child.samplers] as SpaceFile['samplers']),
      reason: `${g.name} widths ${lo}-${hi} (rho ${t.rho.toFixed(2)}, Holm p ${adjusted[i].toFixed(3)})`,
    });
  });
  const evidence = { tested: tested.length, share, alpha, groups };
  for (const p of proposals) p.evidence = evidence;
  if (!proposals.length) {
    return {
      skipped: {
        rule: 'ranges', applied: false, evidence,
        reason: `no group's keep ratio both correlates with error (Spearman, Holm-corrected over ${tested.length} groups at ${alpha}) and has a good range on that side that keeps ${(100 * share).toFixed(0)}% or fewer of its widths`,
      },
    };
  }
  return { proposals };
}

/** Rank-sum test of the held-out trials a change keeps against those it removes. */
function confirm(p: Proposal, held: readonly Observation[]): Omit<Confirmation, 'adjustedP' | 'confirmed'> {
  const inside = held.filter(p.keeps).map((o) => o.error);
  const outside = held.filter((o) => !p.keeps(o)).map((o) => o.error);
  const test = rankSumLess(inside, outside);
  return {
    inside: inside.length, outside: outside.length,
    meanInside: inside.length ? round(ss.mean(inside)) : null, meanOutside: outside.length ? round(ss.mean(outside)) : null,
    pValue: round(test.p, 4), minP: round(test.minP, 3),
  };
}

export interface RuleDecisions {
  outcomes: RuleOutcome[];
  /** Confirmed changes, in rule order, to apply to the child. */
  apply: { rule: RefineRule; apply: (child: SpaceFile) => void }[];
  split: { selection: number; confirmation: number; seed: number; selectionTrials: number[] };
}

/**
 * Which rules change the space, without building it: propose on the selection half, confirm on the
 * held-out half with Holm's correction across every proposed change. Pure and cheap enough to run on
 * hundreds of permuted populations (the calibration test does).
 */
export function decideRules(parent: LoadedSpace, analysis: RuleInput, options: Pick<RefineOptions, 'rules' | 'seed' | 'rangeShare' | 'selectAlpha' | 'confirmAlpha' | 'ratio'> = {}): RuleDecisions {
  const rules = options.rules ?? REFINE_RULES;
  const seed = options.seed ?? 0;
  const selectAlpha = options.selectAlpha ?? REFINE_DEFAULTS.selectAlpha;
  const confirmAlpha = options.confirmAlpha ?? REFINE_DEFAULTS.confirmAlpha;
  const compiled = compileSpace(parent);
  const { selection, confirmation } = splitHalves(analysis.obs, seed);
  const split = { selection: selection.length, confirmation: confirmation.length, seed, selectionTrials: selection.map((o) => o.index) };
  const minTrials = options.ratio?.minTrials ?? RATIO_DEFAULTS.minTrials;
  if (selection.length < minTrials) {
    const reason = `too few completed trials (${analysis.obs.length}) to choose rules on one half (${minTrials} needed) and confirm them on the other`;
    return { outcomes: rules.map((rule) => ({ rule, applied: false, reason, evidence: { n: analysis.obs.length } })), apply: [], split };
  }
  const decisions = new Map<RefineRule, Decision>();
  for (const rule of rules) {
    if (rule === 'ratio') decisions.set(rule, ratioProposal(selection, analysis, compiled, seed, options.ratio ?? {}));
    if (rule === 'monotone') decisions.set(rule, monotoneProposal(selection, analysis, parent, selectAlpha));
    if (rule === 'ranges') decisions.set(rule, rangesProposal(selection, analysis, compiled, seed, options.rangeShare ?? REFINE_DEFAULTS.rangeShare, selectAlpha));
  }
  const proposals = [...decisions.values()].flatMap((d) => d.proposals ?? []);
  const tests = proposals.map((p) => confirm(p, confirmation));
  const adjusted = holmAdjust(tests.map((t) => t.pValue));
  const confirmations = tests.map((t, i): Confirmation => ({ ...t, adjustedP: round(adjusted[i], 4), confirmed: adjusted[i] <= confirmAlpha }));
  const describe = (c: Confirmation) =>
    `held-out half: ${c.inside} kept trials, mean error ${c.meanInside === null ? '–' : (100 * c.meanInside).toFixed(2) + '%'}, against ${c.outside} removed, ` +
    `${c.meanOutside === null ? '–' : (100 * c.meanOutside).toFixed(2) + '%'}; rank-sum p ${c.pValue.toFixed(3)}, Holm ${c.adjustedP.toFixed(3)} (need <= ${confirmAlpha})`;

  const outcomes: RuleOutcome[] = [];
  const apply: RuleDecisions['apply'] = [];
  for (const rule of rules) {
    const d = decisions.get(rule) as Decision;
    if (d.skipped) {
      outcomes.push(d.skipped);
      continue;
    }
    const mine = proposals.map((p, i) => ({ p, c: confirmations[i] })).filter((x) => x.p.rule === rule);
    const kept = mine.filter((x) => x.c.confirmed);
    for (const x of kept) apply.push({ rule, apply: x.p.apply });
    if (rule === 'ranges') {
      for (const x of mine) Object.assign(x.p.groupEvidence ?? {}, { confirmation: x.c });
      const groups = (g: typeof mine) => g.map((x) => x.p.reason).join('; ');
      outcomes.push({
        rule, applied: kept.length > 0, proposed: true, evidence: mine[0].p.evidence,
        reason: kept.length
          ? `narrowed ${kept.length} group(s), confirmed on the held-out half: ${groups(kept)}${kept.length < mine.length ? `; not confirmed: ${groups(mine.filter((x) => !x.c.confirmed))}` : ''}`
          : `proposed on the selection half but not confirmed on the held-out half: ${groups(mine)}`,
      });
      continue;
    }
    const { p, c } = mine[0];
    outcomes.push({
      rule, applied: c.confirmed, proposed: true, evidence: p.evidence, confirmation: c,
      reason: c.confirmed ? `${p.reason}; confirmed on the ${describe(c)}` : `proposed on the selection half (${p.reason}) but not confirmed on the ${describe(c)}`,
    });
  }
  return { outcomes, apply, split };
}

/** Whether a space can yield configurations at all (its regime reachable, some draw accepted). */
function sampleable(loaded: LoadedSpace, seed: number): string | null {
  try {
    sampleSpace(compileSpace(loaded), 5, seed, { maxAttempts: 200_000 });
    return null;
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
}

export function refineSpace(parent: LoadedSpace, analysis: CampaignAnalysis, options: RefineOptions): Refinement {
  const seed = options.seed ?? 0;
  const compiledParent = compileSpace(parent);
  const decided = decideRules(parent, analysis, options);
  const build = (dropped: ReadonlySet<RefineRule>): SpaceFile => {
    const child: SpaceFile = structuredClone(parent.file);
    child.name = options.name;
    child.parent = options.parentRef;
    for (const change of decided.apply) if (!dropped.has(change.rule)) change.apply(child);
    return child;
  };

  // Rules that together leave nothing to sample are dropped, last first, and the drop is recorded.
  const dropped = new Set<RefineRule>();
  let outcomes = decided.outcomes;
  let child = build(dropped);
  for (;;) {
    const problem = sampleable(parseSpace(child, options.name), seed);
    if (!problem) break;
    const last = [...outcomes].reverse().find((o) => o.applied);
    if (!last) throw new UserError(`refined space ${options.name} cannot be sampled: ${problem}`);
    dropped.add(last.rule);
    outcomes = outcomes.map((o) => (o === last ? { ...o, applied: false, reason: `dropped: together with the rules before it, it left a space that cannot be sampled (${problem}); it had: ${o.reason}` } : o));
    child = build(dropped);
  }
  const compiledChild = compileSpace(parseSpace(child, options.name));
  const kept = keptShare(compiledParent, compiledChild, options.keptSamples ?? 2000, seed);
  const applied = outcomes.filter((o) => o.applied).map((o) => o.rule);
  // One 'Refined from' sentence per file: a grandchild replaces its parent's rather than stacking them.
  const base = parent.file.description.replace(/\s*Refined from .*$/s, '').trim();
  child.description = `${base ? base.replace(/([^.])$/, '$1.') + ' ' : ''}Refined from ${options.parentRef} by ${applied.length ? applied.join(', ') : 'no rule'}.`;
  child.provenance = {
    refinedBy: 'prunespace refine',
    date: options.date ?? new Date().toISOString(),
    campaign: options.campaign,
    trials: { completed: analysis.obs.length, total: analysis.trialsTotal, failed: analysis.failed, topK: analysis.topK },
    bestError: analysis.summary.min,
    keptShareOfParent: { share: round(kept.share, 4), samples: kept.samples },
    validation: {
      method: 'rules chosen on a seeded random half of the trials, each proposed change confirmed on the other half (one-sided rank-sum, Holm across changes)',
      selectAlpha: options.selectAlpha ?? REFINE_DEFAULTS.selectAlpha,
      confirmAlpha: options.confirmAlpha ?? REFINE_DEFAULTS.confirmAlpha,
      ...decided.split,
    },
    rules: outcomes,
  };
  return { child, outcomes, kept };
}

/** Share of parent samples the child contains. */
export function keptShare(parent: CompiledSpace, child: CompiledSpace, samples: number, seed: number): { share: number; samples: number } {
  const { configs } = sampleSpace(parent, samples, seed);
  const kept = configs.filter((c) => child.contains(c.widths as WidthConfig)).length;
  return { share: configs.length ? kept / configs.length : 0, samples: configs.length };
}

