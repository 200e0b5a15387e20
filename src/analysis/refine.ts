/**
 * Refinement: a child space narrowed around what a campaign's winners share. Each rule adds one
 * constraint and records the statistic that justified it; a rule without support is skipped with
 * the reason. The child must stay sampleable, and how much of the parent it keeps is measured.
 */
import type { ChannelGroup, WidthConfig } from '../nets/types.js';
import { compileSpace, selects, type CompiledSpace } from '../space/compile.js';
import { parseSpace, type LoadedSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import type { Constraint, SamplerSpec, SpaceFile } from '../space/schema.js';
import { UserError } from '../util/errors.js';
import type { CampaignAnalysis } from './analyse.js';
import { RATIO_DEFAULTS } from './buckets.js';
import { stageGroups } from './profiles.js';

export const REFINE_RULES = ['ratio', 'params', 'monotone', 'ranges'] as const;
export type RefineRule = (typeof REFINE_RULES)[number];

export interface RuleOutcome {
  rule: RefineRule;
  applied: boolean;
  /** Why the rule was applied or skipped, in words. */
  reason: string;
  /** The statistics behind the decision. */
  evidence: Record<string, unknown>;
}

export interface RefineOptions {
  rules?: readonly RefineRule[];
  /** Name of the child space. */
  name: string;
  /** The parent as the child file should name it (a path relative to the child's folder). */
  parentRef: string;
  /** Campaign facts recorded in the provenance (directory, name, rounds). */
  campaign: Record<string, unknown>;
  date?: string;
  seed?: number;
  /** Parent samples used to estimate the kept share. */
  keptSamples?: number;
  /** Winners' share of monotone stage widths needed for the monotone rule. */
  monotoneShare?: number;
  /** A group's keep range is narrowed only where the good range keeps at most this share of its widths. */
  rangeShare?: number;
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

function ratioRule(a: CampaignAnalysis, parent: CompiledSpace, child: SpaceFile): RuleOutcome {
  const r = a.ratio;
  const opt = r.optimum;
  if (!opt) return { rule: 'ratio', applied: false, reason: `no supported optimal FLOPs/param ratio: ${r.reasons.join('; ')}`, evidence: { n: r.n } };
  // The window holds every ratio that is plausibly optimal (bootstrap interval) or practically as good (band).
  const [lo, hi] = narrow(Math.min(opt.interval.lo, opt.band[0]), Math.max(opt.interval.hi, opt.band[1]), parent.flopsPerParam);
  const ratios = a.obs.map((o) => o.ratio);
  const inside = ratios.filter((x) => x >= lo && x <= hi).length;
  const evidence = {
    optimum: round(opt.ratio), interval: [round(opt.interval.lo), round(opt.interval.hi)], band: opt.band.map((x) => round(x)),
    tolerance: opt.tolerance, curvature: round(opt.curvature), interiorShare: opt.interiorShare, originalRatio: round(a.originalRatio),
    window: [round(lo), round(hi)], trialsInside: inside, trials: ratios.length,
  };
  if (inside === ratios.length) return { rule: 'ratio', applied: false, reason: 'the optimum window covers every sampled ratio, so it would remove nothing', evidence };
  child.regime.flopsPerParam = { min: round(lo, 6), max: round(hi, 6) };
  return {
    rule: 'ratio', applied: true, evidence,
    reason: `error is lowest at FLOPs/param ${opt.ratio.toFixed(1)} (95% interval ${opt.interval.lo.toFixed(1)}-${opt.interval.hi.toFixed(1)}, ` +
      `${(100 * opt.interiorShare).toFixed(0)}% of resamples agree; original network ${a.originalRatio.toFixed(1)}); ratio window ${lo.toFixed(1)}-${hi.toFixed(1)} keeps ${inside} of ${ratios.length} trials`,
  };
}

function paramsRule(a: CampaignAnalysis, parent: CompiledSpace, child: SpaceFile, ratioApplied: boolean): RuleOutcome {
  const b = a.ratio.bucketOptimum;
  if (ratioApplied) return { rule: 'params', applied: false, reason: 'the FLOPs/param window already bounds parameters inside this FLOPs regime', evidence: {} };
  if (!b) return { rule: 'params', applied: false, reason: `no parameter buckets: ${a.ratio.reasons.join('; ')}`, evidence: { n: a.ratio.n } };
  const evidence = {
    bucket: b.bucket, buckets: a.ratio.buckets.length, ratio: round(b.ratio), meanError: round(b.meanError), share: round(b.share, 3),
    ratioInterval: [round(b.ratioInterval.lo), round(b.ratioInterval.hi)], paramsWindow: b.paramsWindow, atEdge: b.atEdge, n: a.ratio.n,
  };
  if (a.ratio.n < RATIO_DEFAULTS.minTrials) return { rule: 'params', applied: false, reason: `too few completed trials (${a.ratio.n} < ${RATIO_DEFAULTS.minTrials})`, evidence };
  if (b.atEdge) return { rule: 'params', applied: false, reason: `the best parameter bucket is at the edge of those sampled (bucket ${b.bucket + 1} of ${a.ratio.buckets.length}); the optimum may lie outside`, evidence };
  const all = a.ratio.buckets;
  if (b.paramsWindow[0] <= all[0].paramsLo && b.paramsWindow[1] >= all[all.length - 1].paramsHi) {
    return { rule: 'params', applied: false, reason: 'the bootstrap interval of the best bucket spans every bucket', evidence };
  }
  const [lo, hi] = narrow(b.paramsWindow[0], b.paramsWindow[1], parent.params);
  child.regime.params = { min: lo, max: hi, unit: 'absolute' };
  return {
    rule: 'params', applied: true, evidence,
    reason: `parameter bucket ${b.bucket + 1} of ${all.length} (FLOPs/param ${b.ratio.toFixed(1)}) has the lowest mean error (chosen in ${(100 * b.share).toFixed(0)}% of resamples); params window ${lo}-${hi}`,
  };
}

function monotoneRule(a: CampaignAnalysis, child: SpaceFile, share: number): RuleOutcome {
  const m = a.profile.monotone;
  const chain = stageGroups(a.spec.groups);
  if (!m) return { rule: 'monotone', applied: false, reason: chain.length < 2 ? 'the network has fewer than two stage groups' : 'no completed trials', evidence: {} };
  const evidence = { winners: round(m.winners, 3), all: round(m.all, 3), k: a.profile.k, groups: chain.map((g) => g.name) };
  const exists = child.constraints.some((c) => c.rule === 'non-decreasing' && c.of === 'width' && JSON.stringify(c.select) === JSON.stringify({ kinds: ['stage'] }));
  if (exists) return { rule: 'monotone', applied: false, reason: 'the parent already requires non-decreasing stage widths', evidence };
  if (m.all >= 1) return { rule: 'monotone', applied: false, reason: 'every sampled trial already has non-decreasing stage widths', evidence };
  if (a.profile.k < 5) return { rule: 'monotone', applied: false, reason: `too few winners (${a.profile.k} < 5) to judge their stage widths`, evidence };
  // Winners must be monotone more often than chance allows: a one-sided binomial test against the population's share.
  const hits = Math.round(m.winners * a.profile.k);
  const pValue = binomialTail(a.profile.k, hits, m.all);
  Object.assign(evidence, { pValue: round(pValue, 4) });
  const summary = `${(100 * m.winners).toFixed(0)}% of the best ${a.profile.k} trials have non-decreasing stage widths against ${(100 * m.all).toFixed(0)}% of all (binomial p = ${pValue.toFixed(3)})`;
  if (m.winners < share || pValue > MONOTONE_ALPHA) {
    return {
      rule: 'monotone', applied: false, evidence,
      reason: `${summary}; need at least ${(100 * share).toFixed(0)}% and p <= ${MONOTONE_ALPHA}`,
    };
  }
  const constraint: Constraint = { rule: 'non-decreasing', select: { kinds: ['stage'] }, of: 'width' };
  child.constraints.push(constraint);
  return {
    rule: 'monotone', applied: true, evidence,
    reason: summary,
  };
}

/** Significance the monotone rule needs: winners this monotone would arise by chance at most this often. */
const MONOTONE_ALPHA = 0.1;

/** P(X >= hits) for X ~ Binomial(n, p). */
export function binomialTail(n: number, hits: number, p: number): number {
  let total = 0;
  for (let x = hits; x <= n; x++) {
    let logChoose = 0;
    for (let i = 1; i <= x; i++) logChoose += Math.log(n - x + i) - Math.log(i);
    total += Math.exp(logChoose + x * Math.log(p) + (n - x) * Math.log1p(-p));
  }
  return Math.min(1, total);
}

/** The parent's allowed widths of a group that fall inside [lo, hi] keep ratio; never empty. */
function widthsWithin(allowed: readonly number[], group: ChannelGroup, lo: number, hi: number): number[] {
  const inside = allowed.filter((w) => w / group.base >= lo - 1e-9 && w / group.base <= hi + 1e-9);
  if (inside.length) return inside;
  const mid = ((lo + hi) / 2) * group.base;
  return [allowed.reduce((b, w) => (Math.abs(w - mid) < Math.abs(b - mid) ? w : b))];
}

function rangesRule(a: CampaignAnalysis, parent: CompiledSpace, child: SpaceFile, share: number): RuleOutcome {
  if (a.obs.length < RATIO_DEFAULTS.minTrials) {
    return { rule: 'ranges', applied: false, reason: `too few completed trials (${a.obs.length} < ${RATIO_DEFAULTS.minTrials}) for good ranges`, evidence: {} };
  }
  const narrowed: SamplerSpec[] = [];
  const groups: Record<string, unknown> = {};
  for (const choice of parent.choices) {
    const g = choice.group;
    if (choice.widths.length < 2) continue;
    const m = a.metrics.find((x) => x.key === `keep.${g.name}`);
    if (!m?.goodRange) continue;
    const keep = widthsWithin(choice.widths, g, m.goodRange.lo, m.goodRange.hi);
    if (keep.length > share * choice.widths.length) continue;
    // A narrow good range alone can be luck of a few winners; require that error also trends with the
    // group's keep ratio (|Spearman rho| beyond about two standard errors under no association).
    if (m.rankCorrelation === null || Math.abs(m.rankCorrelation) < 2 / Math.sqrt(a.obs.length)) continue;
    groups[g.name] = {
      spearman: round(m.rankCorrelation, 3),
      goodRange: [round(m.goodRange.lo, 3), round(m.goodRange.mid, 3), round(m.goodRange.hi, 3)],
      parentWidths: [choice.widths[0], choice.widths[choice.widths.length - 1]],
      childWidths: [keep[0], keep[keep.length - 1]],
    };
    // A sampler for this group alone, placed first so that it wins over the parent's broader selection.
    const parentSampler = parent.loaded.file.samplers.find((s) => selects(s.select, g)) ?? parent.loaded.file.samplers[0];
    narrowed.push({
      select: { names: [g.name] },
      keep: { min: keep[0] / g.base, max: keep[keep.length - 1] / g.base },
      distribution: choice.distribution,
      quantum: parentSampler.quantum,
    });
  }
  const evidence = { groups, share, n: a.obs.length };
  if (!narrowed.length) {
    return { rule: 'ranges', applied: false, reason: `no group has both a good range (pycls bootstrap of the best trial) that keeps ${(100 * share).toFixed(0)}% or fewer of its widths and a keep ratio that error trends with (|Spearman rho| >= ${(2 / Math.sqrt(a.obs.length)).toFixed(2)})`, evidence };
  }
  child.samplers = [...narrowed, ...child.samplers] as SpaceFile['samplers'];
  return { rule: 'ranges', applied: true, evidence, reason: `narrowed the keep range of ${narrowed.length} group(s) to their winners' good ranges: ${Object.keys(groups).join(', ')}` };
}

/** Share of parent samples the child contains. */
export function keptShare(parent: CompiledSpace, child: CompiledSpace, samples: number, seed: number): { share: number; samples: number } {
  const { configs } = sampleSpace(parent, samples, seed);
  const kept = configs.filter((c) => child.contains(c.widths as WidthConfig)).length;
  return { share: configs.length ? kept / configs.length : 0, samples: configs.length };
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
  const rules = options.rules ?? REFINE_RULES;
  const seed = options.seed ?? 0;
  const compiledParent = compileSpace(parent);
  const applyRules = (active: readonly RefineRule[]): { child: SpaceFile; outcomes: RuleOutcome[] } => {
    const child: SpaceFile = structuredClone(parent.file);
    child.name = options.name;
    child.parent = options.parentRef;
    const outcomes: RuleOutcome[] = [];
    const on = (r: RefineRule) => active.includes(r);
    const ratio = on('ratio') ? ratioRule(analysis, compiledParent, child) : null;
    if (ratio) outcomes.push(ratio);
    if (on('params')) outcomes.push(paramsRule(analysis, compiledParent, child, ratio?.applied ?? false));
    if (on('monotone')) outcomes.push(monotoneRule(analysis, child, options.monotoneShare ?? 0.8));
    if (on('ranges')) outcomes.push(rangesRule(analysis, compiledParent, child, options.rangeShare ?? 0.75));
    return { child, outcomes };
  };

  // Rules that together leave nothing to sample are dropped, last first, and the drop is recorded.
  let active = [...rules];
  const dropped: RuleOutcome[] = [];
  let built = applyRules(active);
  for (;;) {
    const problem = sampleable(parseSpace(built.child, options.name), seed);
    if (!problem) break;
    const last = [...built.outcomes].reverse().find((o) => o.applied);
    if (!last) throw new UserError(`refined space ${options.name} cannot be sampled: ${problem}`);
    active = active.filter((r) => r !== last.rule);
    dropped.push({ ...last, applied: false, reason: `dropped: together with the rules before it, it left a space that cannot be sampled (${problem}); it had: ${last.reason}` });
    built = applyRules(active);
  }
  const outcomes = rules.map((r) => dropped.find((d) => d.rule === r) ?? (built.outcomes.find((o) => o.rule === r) as RuleOutcome));
  const compiledChild = compileSpace(parseSpace(built.child, options.name));
  const kept = keptShare(compiledParent, compiledChild, options.keptSamples ?? 2000, seed);
  const applied = outcomes.filter((o) => o.applied).map((o) => o.rule);
  // One 'Refined from' sentence per file: a grandchild replaces its parent's rather than stacking them.
  const base = parent.file.description.replace(/\s*Refined from .*$/s, '').trim();
  built.child.description = `${base ? base.replace(/([^.])$/, '$1.') + ' ' : ''}Refined from ${options.parentRef} by ${applied.length ? applied.join(', ') : 'no rule'}.`;
  built.child.provenance = {
    refinedBy: 'prunespace refine',
    date: options.date ?? new Date().toISOString(),
    campaign: options.campaign,
    trials: { completed: analysis.obs.length, total: analysis.trialsTotal, failed: analysis.failed, topK: analysis.topK },
    bestError: analysis.summary.min,
    keptShareOfParent: { share: round(kept.share, 4), samples: kept.samples },
    rules: outcomes,
  };
  return { child: built.child, outcomes, kept };
}
