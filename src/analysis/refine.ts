/**
 * Refinement: a child space narrowed around what a campaign's winners share. Rules are a registry of
 * proposers; each proposes candidate changes with a rank statistic of FLOPs-adjusted error, and one
 * procedure-level permutation test (Westfall–Young step-down max-T over every candidate of every rule)
 * decides which changes are kept, so the family-wise false-refinement rate is alpha using all trials and
 * adding a rule never loosens it. Each rule records the statistics behind it or the reason it was skipped.
 */
import * as ss from 'simple-statistics';
import type { ChannelGroup, WidthConfig } from '../nets/types.js';
import { compileSpace, selects, type CompiledSpace, type LatencyPredictor } from '../space/compile.js';
import { parseSpace, type LoadedSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import type { Constraint, SamplerSpec, SpaceFile } from '../space/schema.js';
import { UserError } from '../util/errors.js';
import type { CampaignAnalysis } from './analyse.js';
import { defaultBucketCount, type RatioOptions } from './buckets.js';
import { centred, maxTAdjust, residualizer, type Contrast } from './max-t.js';
import type { Observation } from './population.js';
import { isMonotone, stageGroups } from './profiles.js';
import { midRanks } from './significance.js';

export const REFINE_RULES = ['ratio', 'monotone', 'ranges'] as const;
export type RefineRule = (typeof REFINE_RULES)[number];

/** Rules that existed once, and why they went: asking for one is an error that says so. */
export const REMOVED_RULES: Record<string, string> = {
  params:
    'the params rule was removed: every space has a FLOPs regime, and inside it a params window is a FLOPs/param window, ' +
    'which the ratio rule already tests with a stricter standard (use ratio)',
};

export const REFINE_DEFAULTS = {
  /** Family-wise false-refinement rate: the chance that noise changes the space at all. */
  alpha: 0.1,
  /** Permutations of the adjusted errors (the smallest adjusted p-value is 1 / (1 + permutations)). */
  permutations: 999,
  /** Share of the sampled range a trend cuts from its worse end (trials for ratios, allowed widths for groups). */
  tailShare: 1 / 3,
  /** Fewest trials on either side of a change (kept and removed), and fewest trials to refine at all. */
  minSide: 5,
  minTrials: 20,
};

/** What a candidate change's test found: its statistic and family-wise adjusted p-value. */
export interface CandidateTest {
  candidate: string;
  /** Standardised rank statistic (positive: the change keeps the trials with lower adjusted error). */
  z: number;
  adjustedP: number;
  accepted: boolean;
}

export interface RuleOutcome {
  rule: RefineRule;
  applied: boolean;
  /** Why the rule was applied or skipped, in words. */
  reason: string;
  /** The statistics behind the decision. */
  evidence: Record<string, unknown>;
  /** Whether the rule had candidate changes in the family (false: it could propose nothing on these trials). */
  proposed?: boolean;
  /** The strongest candidate's test (ranges: per group, in evidence.groups). */
  test?: CandidateTest;
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
  /** Seeds the permutations and the kept-share estimate. */
  seed?: number;
  /** Parent samples used to estimate the kept share. */
  keptSamples?: number;
  alpha?: number;
  permutations?: number;
  tailShare?: number;
  /** Kept for the ratio analysis options the CLI passes (buckets); the rules bin ratios themselves. */
  ratio?: RatioOptions;
  /** A latency regime's predictor (the one the campaign sampled against): the kept share is then of the latency-bounded parent. */
  predictLatency?: LatencyPredictor;
}

export interface Refinement {
  child: SpaceFile;
  outcomes: RuleOutcome[];
  /** Share of parent samples the child contains, and how many parent samples it rests on. */
  kept: { share: number; samples: number };
  /** The candidates the rules judged and the rung whose errors they judged them on. */
  judged: { candidates: number; rung: number };
}

const round = (x: number, digits = 4) => Number(x.toPrecision(digits));

/** What the rules read of a campaign's analysis (the calibration builds just this, cheaply). */
export type RuleInput = Pick<CampaignAnalysis, 'obs' | 'spec' | 'originalRatio' | 'profile'>;

/** A change to the space, once its direction is known. */
interface Change {
  keeps: (o: Observation) => boolean;
  apply: (child: SpaceFile) => void;
  reason: string;
  evidence: Record<string, unknown>;
}

/** One candidate change a rule puts into the family: a contrast over the trials, and the change it stands for. */
interface Candidate {
  key: string;
  /** The tier of the family it belongs to (a key of its proposer's `tiers`). */
  tier: string;
  /** For ranges, the group it narrows (one change per group may apply). */
  group?: string;
  contrast: Contrast;
  /** The change the candidate makes given the sign of its statistic (positive: high score, low error). */
  change: (z: number) => Change;
}

interface Proposal {
  candidates: Candidate[];
  evidence: Record<string, unknown>;
  /** Why the rule put nothing into the family. */
  skipped?: string;
}

interface RuleContext {
  obs: readonly Observation[];
  input: RuleInput;
  parent: LoadedSpace;
  compiled: CompiledSpace;
  tailShare: number;
  minSide: number;
}

/**
 * A rule: proposes candidate changes; `single` rules apply at most their strongest accepted candidate. Its
 * tiers are its kinds of change with their prior shares of alpha (renormalised over the rules that run).
 */
interface Proposer {
  propose(ctx: RuleContext): Proposal;
  single: boolean;
  tiers: Record<string, number>;
  /** Tiers in the order their accepted candidates are preferred (single rules); default: by strength alone. */
  preference?: string[];
}

/** Whether an indicator change leaves enough trials on both sides. */
function sided(keep: readonly boolean[], minSide: number): boolean {
  const kept = keep.filter(Boolean).length;
  return kept >= minSide && keep.length - kept >= minSide;
}

const indicator = (keep: readonly boolean[]): Contrast => ({ scores: centred(keep.map((k) => (k ? 1 : 0))), twoSided: false });

/** Kept trials against one removed side only (mean rank of each, other trials weigh nothing): a contrast that sums to zero. */
function against(keep: readonly boolean[], side: readonly boolean[]): Float64Array {
  const kept = keep.filter(Boolean).length;
  const other = side.filter(Boolean).length;
  return Float64Array.from(keep, (k, i) => (k ? 1 / kept : side[i] ? -1 / other : 0));
}
const trend = (values: readonly number[]): Contrast => ({ scores: centred(midRanks(values)), twoSided: true });

/** Geometric midpoint between two neighbouring sampled ratios: a cut that falls between trials. */
const between = (a: number, b: number) => Math.sqrt(a * b);

/** Merges a new FLOPs/param bound into the child's, never widening the parent's. */
function ratioWindow(child: SpaceFile, lo: number | null, hi: number | null): void {
  const w = { ...(child.regime.flopsPerParam ?? {}) };
  if (lo !== null) w.min = round(Math.max(lo, w.min ?? 0), 6);
  if (hi !== null) w.max = round(Math.min(hi, w.max ?? Infinity), 6);
  child.regime.flopsPerParam = w;
}

const ratioRule: Proposer = {
  single: true,
  // The FLOPs/param ratio is the method's central hypothesis (He et al.), and its trend a single test: it gets the largest share.
  tiers: { 'ratio:trend': 0.4, 'ratio:window': 0.15 },
  // An interior window that beats both sides says more than a trend: where both are accepted, the window applies.
  preference: ['ratio:window', 'ratio:trend'],
  propose({ obs, input, tailShare, minSide }) {
    const ratios = obs.map((o) => o.ratio);
    const sorted = [...ratios].sort((a, b) => a - b);
    const n = obs.length;
    const evidence: Record<string, unknown> = { sampled: [round(sorted[0]), round(sorted[n - 1])], originalRatio: round(input.originalRatio) };
    if (Math.log(sorted[n - 1] / sorted[0]) < 0.02) return { candidates: [], evidence, skipped: `the trials' FLOPs/param ratios span too narrow a range (${sorted[0].toFixed(1)}..${sorted[n - 1].toFixed(1)})` };
    const candidates: Candidate[] = [];
    // Trend: where error falls steadily towards one edge, the optimum is at (or beyond) that edge; cut the worse tail.
    const cutAt = Math.max(minSide, Math.round(tailShare * n));
    const lowCut = between(sorted[cutAt - 1], sorted[cutAt]);
    const highCut = between(sorted[n - cutAt - 1], sorted[n - cutAt]);
    candidates.push({
      key: 'ratio:trend',
      tier: 'ratio:trend',
      contrast: trend(ratios.map(Math.log)),
      change: (z) => {
        const up = z > 0;
        const cut = up ? lowCut : highCut;
        return {
          keeps: (o) => (up ? o.ratio >= cut : o.ratio <= cut),
          apply: (child) => ratioWindow(child, up ? cut : null, up ? null : cut),
          evidence: { kind: 'one-sided', cut: round(cut), keeps: up ? 'above' : 'below', tailShare: round(tailShare, 3) },
          reason: `error ${up ? 'falls' : 'rises'} with FLOPs/param across the sampled ratios (${sorted[0].toFixed(1)}..${sorted[n - 1].toFixed(1)}), ` +
            `so the optimum lies at the ${up ? 'upper' : 'lower'} edge: one-sided window, the worse ${(100 * tailShare).toFixed(0)}% of trials cut ` +
            `(FLOPs/param ${up ? '>=' : '<='} ${cut.toFixed(1)}; original network ${input.originalRatio.toFixed(1)})`,
        };
      },
    });
    // Interior optimum: a window of contiguous ratio bins that leaves at least one bin out on each side and
    // beats both sides (the smaller of its two rank contrasts), so a steady trend alone never passes for one.
    const bins = Math.min(6, defaultBucketCount(n));
    const edges = Array.from({ length: bins - 1 }, (_, b) => {
      const k = Math.round(((b + 1) * n) / bins);
      return between(sorted[k - 1], sorted[k]);
    });
    const binOf = (r: number) => edges.filter((e) => r > e).length;
    const minWidth = Math.min(2, bins - 2);
    for (let i = 1; i <= bins - 2; i++) {
      for (let j = i + minWidth - 1; j <= bins - 2; j++) {
        const keep = ratios.map((r) => binOf(r) >= i && binOf(r) <= j);
        const below = ratios.map((r) => binOf(r) < i);
        const above = ratios.map((r) => binOf(r) > j);
        if (!sided(keep, minSide) || below.filter(Boolean).length < minSide || above.filter(Boolean).length < minSide) continue;
        const lo = edges[i - 1];
        const hi = edges[j];
        candidates.push({
          key: `ratio:window:${i}-${j}`,
          tier: 'ratio:window',
          contrast: { scores: against(keep, below), also: against(keep, above), twoSided: false },
          change: () => ({
            keeps: (o) => o.ratio >= lo && o.ratio <= hi,
            apply: (child) => ratioWindow(child, lo, hi),
            evidence: { kind: 'two-sided', window: [round(lo), round(hi)], bins: [i, j], of: bins },
            reason: `error is lowest at interior FLOPs/param ${lo.toFixed(1)}-${hi.toFixed(1)} (bins ${i + 1}-${j + 1} of ${bins} by ratio); ` +
              `two-sided window (original network ${input.originalRatio.toFixed(1)})`,
          }),
        });
      }
    }
    return { candidates, evidence };
  },
};

const monotoneRule: Proposer = {
  single: true,
  tiers: { monotone: 0.15 },
  propose({ obs, input, parent, minSide }) {
    const chain = stageGroups(input.spec.groups);
    if (chain.length < 2) return { candidates: [], evidence: {}, skipped: 'the network has fewer than two stage groups' };
    const exists = parent.file.constraints.some((c) => c.rule === 'non-decreasing' && c.of === 'width' && JSON.stringify(c.select) === JSON.stringify({ kinds: ['stage'] }));
    if (exists) return { candidates: [], evidence: {}, skipped: 'the parent already requires non-decreasing stage widths' };
    const keeps = (o: Observation) => isMonotone(o.widths, chain);
    const keep = obs.map(keeps);
    const yes = obs.filter(keeps).map((o) => o.error);
    const no = obs.filter((o) => !keeps(o)).map((o) => o.error);
    // Descriptive: winners' share against the other trials' (winners are not counted among those they are compared with).
    const m = input.profile.monotone;
    const winnersVsRest = m && input.profile.n > input.profile.k
      ? { winners: round(m.winners, 3), rest: round((m.all * input.profile.n - m.winners * input.profile.k) / (input.profile.n - input.profile.k), 3), k: input.profile.k }
      : null;
    const evidence: Record<string, unknown> = { groups: chain.map((g) => g.name), monotone: yes.length, other: no.length, winnersVsRest };
    if (!sided(keep, minSide)) return { candidates: [], evidence, skipped: `too few trials on one side: ${yes.length} with non-decreasing stage widths, ${no.length} without (${minSide} needed on each)` };
    Object.assign(evidence, { meanMonotone: round(ss.mean(yes)), meanOther: round(ss.mean(no)) });
    const constraint: Constraint = { rule: 'non-decreasing', select: { kinds: ['stage'] }, of: 'width' };
    return {
      evidence,
      candidates: [{
        key: 'monotone',
        tier: 'monotone',
        contrast: indicator(keep),
        change: () => ({
          keeps, evidence: {}, apply: (child) => child.constraints.push(constraint),
          reason: `trials with non-decreasing stage widths: mean error ${(100 * ss.mean(yes)).toFixed(2)}% (${yes.length}) against ${(100 * ss.mean(no)).toFixed(2)}% (${no.length})`,
        }),
      }],
    };
  },
};

/** The widths a group keeps once a trend cuts the worse `share` of its allowed widths (at least one goes, one stays). */
export function trendWidths(allowed: readonly number[], widerIsBetter: boolean, share: number): number[] {
  const drop = Math.min(allowed.length - 1, Math.max(1, Math.round(share * allowed.length)));
  return widerIsBetter ? allowed.slice(drop) : allowed.slice(0, allowed.length - drop);
}

const rangesRule: Proposer = {
  single: false,
  tiers: { ranges: 0.3 },
  propose({ obs, compiled, tailShare }) {
    const groups: Record<string, unknown> = {};
    const candidates: Candidate[] = [];
    for (const choice of compiled.choices) {
      if (choice.widths.length < 2) continue;
      const g: ChannelGroup = choice.group;
      const keep = obs.map((o) => o.widths[g.id]);
      if (new Set(keep).size < 2) continue;
      const entry: Record<string, unknown> = { parentWidths: [choice.widths[0], choice.widths[choice.widths.length - 1]] };
      groups[g.name] = entry;
      candidates.push({
        key: `ranges:${g.name}`,
        tier: 'ranges',
        group: g.name,
        contrast: trend(keep),
        change: (z) => {
          const kept = trendWidths(choice.widths, z > 0, tailShare);
          const lo = kept[0];
          const hi = kept[kept.length - 1];
          entry.childWidths = [lo, hi];
          const parentSampler = compiled.loaded.file.samplers.find((s) => selects(s.select, g)) ?? compiled.loaded.file.samplers[0];
          const sampler: SamplerSpec = { select: { names: [g.name] }, keep: { min: lo / g.base, max: hi / g.base }, distribution: choice.distribution, quantum: parentSampler.quantum };
          return {
            keeps: (o) => o.widths[g.id] >= lo && o.widths[g.id] <= hi, evidence: entry,
            // A sampler for this group alone, placed first so that it wins over the parent's broader selection.
            apply: (child) => (child.samplers = [sampler, ...child.samplers] as SpaceFile['samplers']),
            reason: `${g.name} widths ${lo}-${hi} (error ${z > 0 ? 'falls' : 'rises'} with its width; the ${z > 0 ? 'narrowest' : 'widest'} ${choice.widths.length - kept.length} of ${choice.widths.length} widths cut)`,
          };
        },
      });
    }
    if (!candidates.length) return { candidates, evidence: { groups }, skipped: 'no group has two or more sampled widths' };
    return { candidates, evidence: { tested: candidates.length, groups } };
  },
};

/** The registry: a rule is an entry here; every entry's candidates join one family. */
export const RULE_PROPOSERS: Record<RefineRule, Proposer> = { ratio: ratioRule, monotone: monotoneRule, ranges: rangesRule };

export interface RuleDecisions {
  outcomes: RuleOutcome[];
  /** Accepted changes, in rule order, to apply to the child. */
  apply: { rule: RefineRule; apply: (child: SpaceFile) => void }[];
  /** The family the permutation test judged. */
  family: { candidates: number; permutations: number; alpha: number; seed: number; adjustment: string; shares?: Record<string, number> };
}

export const FLOPS_ADJUSTMENT =
  'residuals of a least-squares fit of error on log FLOPs and its square, every trial counted (FLOPs bins would leave a few trials a bin at 48 trials); ' +
  'each permutation shuffles these residuals across configurations and fits again (Freedman-Lane)';

/** The FLOPs adjustment as a residual maker over the observations. */
export function flopsResidualizer(obs: readonly Observation[]): (v: Float64Array) => void {
  const logs = obs.map((o) => Math.log(o.flops));
  const mean = logs.reduce((s, x) => s + x, 0) / (logs.length || 1);
  const x = logs.map((l) => l - mean);
  return residualizer([x, x.map((v) => v * v)], obs.length);
}

/**
 * Which rules change the space, without building it: every rule's candidates enter one family; the whole
 * family's statistics are recomputed on each permutation of the FLOPs-adjusted errors, and a candidate is
 * accepted where its step-down max-T adjusted p-value is at most alpha. Pure and fast enough to run on
 * hundreds of simulated campaigns (the calibration does).
 */
export function decideRules(
  parent: LoadedSpace,
  analysis: RuleInput,
  options: Pick<RefineOptions, 'rules' | 'seed' | 'alpha' | 'permutations' | 'tailShare'> & { /** Off only to show what the adjustment prevents. */ adjustFlops?: boolean } = {},
): RuleDecisions {
  const rules = options.rules ?? REFINE_RULES;
  const seed = options.seed ?? 0;
  const alpha = options.alpha ?? REFINE_DEFAULTS.alpha;
  const permutations = options.permutations ?? REFINE_DEFAULTS.permutations;
  const obs = analysis.obs;
  const family = { candidates: 0, permutations, alpha, seed, adjustment: options.adjustFlops === false ? 'none' : FLOPS_ADJUSTMENT };
  if (obs.length < REFINE_DEFAULTS.minTrials) {
    const reason = `too few completed trials (${obs.length}; ${REFINE_DEFAULTS.minTrials} needed) to judge a change`;
    return { outcomes: rules.map((rule) => ({ rule, applied: false, reason, evidence: { n: obs.length } })), apply: [], family };
  }
  const ctx: RuleContext = {
    obs, input: analysis, parent, compiled: compileSpace(parent),
    tailShare: options.tailShare ?? REFINE_DEFAULTS.tailShare, minSide: REFINE_DEFAULTS.minSide,
  };
  const proposals = rules.map((rule) => ({ rule, proposal: RULE_PROPOSERS[rule].propose(ctx) }));
  const all = proposals.flatMap(({ rule, proposal }) => proposal.candidates.map((c) => ({ rule, c })));
  family.candidates = all.length;
  // Tiers with candidates share alpha in proportion to their prior weights.
  const tierNames = [...new Set(all.map((x) => x.c.tier))];
  const prior = tierNames.map((t) => RULE_PROPOSERS[all.find((x) => x.c.tier === t)!.rule].tiers[t]);
  const total = prior.reduce((a, b) => a + b, 0);
  const weights = prior.map((w) => w / total);
  const result = maxTAdjust(obs.map((o) => o.error), all.map((x) => x.c.contrast), {
    permutations, seed, adjust: options.adjustFlops === false ? undefined : flopsResidualizer(obs), tiers: all.map((x) => tierNames.indexOf(x.c.tier)), weights,
  });
  Object.assign(family, { shares: Object.fromEntries(tierNames.map((t, i) => [t, round(weights[i], 3)])) });
  const tests = all.map((x, k): CandidateTest => {
    const z = result.z[k];
    const strength = x.c.contrast.twoSided ? Math.abs(z) : z;
    return { candidate: x.c.key, z: round(z, 3), adjustedP: round(result.adjustedP[k], 4), accepted: strength > 0 && result.adjustedP[k] <= alpha };
  });
  const strength = (k: number) => (all[k].c.contrast.twoSided ? Math.abs(result.z[k]) : result.z[k]);
  const describe = (t: CandidateTest) => `z ${t.z.toFixed(2)}, max-T adjusted p ${t.adjustedP.toFixed(3)} (need <= ${alpha})`;

  const outcomes: RuleOutcome[] = [];
  const apply: RuleDecisions['apply'] = [];
  for (const { rule, proposal } of proposals) {
    if (!proposal.candidates.length) {
      outcomes.push({ rule, applied: false, proposed: false, reason: proposal.skipped ?? 'no candidate change', evidence: proposal.evidence });
      continue;
    }
    const mine = all.map((x, k) => k).filter((k) => all[k].rule === rule).sort((a, b) => strength(b) - strength(a));
    const candidates = Object.fromEntries(mine.map((k) => [tests[k].candidate, { z: tests[k].z, adjustedP: tests[k].adjustedP }]));
    const accepted = mine.filter((k) => tests[k].accepted);
    if (!RULE_PROPOSERS[rule].single) {
      const groups = proposal.evidence.groups as Record<string, Record<string, unknown>>;
      for (const k of mine) {
        const name = all[k].c.group as string;
        Object.assign(groups[name], { spearman: round(-result.z[k] / Math.sqrt(obs.length - 1), 3), z: tests[k].z, adjustedP: tests[k].adjustedP });
      }
      const changes = accepted.map((k) => ({ k, change: all[k].c.change(result.z[k]) }));
      for (const { k, change } of changes) {
        groups[all[k].c.group as string].verdict = 'narrowed';
        apply.push({ rule, apply: change.apply });
      }
      const best = tests[mine[0]];
      outcomes.push({
        rule, applied: changes.length > 0, proposed: true, test: best, evidence: proposal.evidence,
        reason: changes.length
          ? `narrowed ${changes.length} group(s): ${changes.map(({ k, change }) => `${change.reason}, ${describe(tests[k])}`).join('; ')}`
          : `no group's width trend survives the family-wise test; strongest ${all[mine[0]].c.group}: ${describe(best)}`,
      });
      continue;
    }
    const rank = (k: number) => RULE_PROPOSERS[rule].preference?.indexOf(all[k].c.tier) ?? 0;
    const top = [...accepted].sort((a, b) => rank(a) - rank(b))[0] ?? mine[0];
    const change = all[top].c.change(result.z[top]);
    if (accepted.length) apply.push({ rule, apply: change.apply });
    outcomes.push({
      rule, applied: accepted.length > 0, proposed: true, test: tests[top],
      evidence: { ...proposal.evidence, ...(accepted.length ? change.evidence : {}), candidates },
      reason: accepted.length ? `${change.reason}; ${describe(tests[top])}` : `no candidate survives the family-wise test; strongest ${tests[top].candidate}: ${describe(tests[top])}`,
    });
  }
  return { outcomes, apply, family };
}

/** Whether a space can yield configurations at all (its regime reachable, some draw accepted). */
function sampleable(loaded: LoadedSpace, seed: number): string | null {
  try {
    // A latency window is carried into the child unchanged; the check is on the width ranges and the FLOPs regime.
    sampleSpace(compileSpace(loaded), 5, seed, { maxAttempts: 200_000, ignoreLatency: true });
    return null;
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
}

export function refineSpace(parent: LoadedSpace, analysis: CampaignAnalysis, options: RefineOptions): Refinement {
  const seed = options.seed ?? 0;
  const latency = { predictLatency: options.predictLatency };
  const compiledParent = compileSpace(parent, latency);
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
  const compiledChild = compileSpace(parseSpace(child, options.name), latency);
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
      method: `every candidate change of every rule judged by one permutation test: Westfall-Young step-down max-T over rank statistics of FLOPs-adjusted rung-${analysis.rung} error, all ${analysis.rung ? 'promoted ' : ''}trials used`,
      errors: analysis.rung
        ? `rung ${analysis.rung} validation error of the ${analysis.obs.length} candidates promoted to it (chosen on the rung below)`
        : 'rung 0 validation error (every candidate at the same fidelity)',
      rung: analysis.rung,
      ...decided.family,
    },
    rules: outcomes,
  };
  return { child, outcomes, kept, judged: { candidates: analysis.obs.length, rung: analysis.rung } };
}

/**
 * Share of parent samples the child contains. With a latency regime and its predictor the parent is sampled inside
 * its latency window, as its candidates were, and the child must admit each sample's predicted latency too; without
 * the predictor the latency window cannot be checked and the estimate is over the width ranges and FLOPs alone.
 */
export function keptShare(parent: CompiledSpace, child: CompiledSpace, samples: number, seed: number): { share: number; samples: number } {
  const { configs } = sampleSpace(parent, samples, seed, { ignoreLatency: !parent.predictLatency });
  const predict = child.latency ? child.predictLatency : undefined;
  const kept = configs.filter((c) => child.contains(c.widths as WidthConfig) && (!predict || child.admitsLatency(c.predictedLatencyMs ?? predict(c.widths)))).length;
  return { share: configs.length ? kept / configs.length : 0, samples: configs.length };
}
