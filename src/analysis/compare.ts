/** EDF comparison of populations (campaigns or rounds): plain and parameter-normalised, KS against the first; a child round against its parent. */
import { binOf, complexityWeights, edf, edfLead, equalBinWeights, ksDistance, logBinEdges, summarize, type EdfPoint, type ErrorSummary } from './edf.js';
import { observations, type Observation, type TrialLike } from './population.js';
import { permutationTest } from './significance.js';

export interface Population {
  label: string;
  /** How the population's trials started ('scratch', 'inherit l1', 'distill'), from its campaign's stored config. */
  init?: string;
  obs: readonly Observation[];
}

export interface ComparedPopulation {
  label: string;
  init?: string;
  summary: ErrorSummary;
  edf: EdfPoint[];
  /** EDF with every parameter bin this population occupies (bins shared across the populations) counting equally. */
  normalizedEdf: EdfPoint[];
  /** KS distance to the reference (first) population; null for the reference itself or empty populations. */
  ks: number | null;
  /**
   * KS distance of the normalised EDFs on the parameter bins both this population and the reference occupy
   * (each shared bin counting equally in both), so that a population covering fewer bins is not compared
   * against bins it has no trials in. Null where no bin is shared.
   */
  ksNormalized: number | null;
  /** Permutation p-value of `ks` (1000 seeded shuffles of the population labels); null where ks is. */
  ksPValue: number | null;
  /** Share of the reference's and of this population's trials that lie in the shared bins (what the normalised KS rests on). */
  sharedShare: { reference: number; population: number } | null;
}

/** Weights of two populations (given their complexities) under which each bin both occupy counts equally; other trials weigh 0. */
export function sharedBinWeights(a: readonly number[], b: readonly number[], edges: readonly number[]): { weightsA: number[]; weightsB: number[]; shareA: number; shareB: number; bins: number } {
  const binA = a.map((c) => binOf(edges, c));
  const binB = b.map((c) => binOf(edges, c));
  const inB = new Set(binB.filter((x) => x >= 0));
  const shared = new Set(binA.filter((x) => x >= 0 && inB.has(x)));
  const weightsA = equalBinWeights(binA.map((x) => (shared.has(x) ? x : -1)));
  const weightsB = equalBinWeights(binB.map((x) => (shared.has(x) ? x : -1)));
  const share = (bins: number[]) => (bins.length ? bins.filter((x) => shared.has(x)).length / bins.length : 0);
  return { weightsA, weightsB, shareA: share(binA), shareB: share(binB), bins: shared.size };
}

export function compareEdfs(populations: readonly Population[], bins = 10): ComparedPopulation[] {
  const edges = logBinEdges(populations.flatMap((p) => p.obs.map((o) => o.params)), bins);
  const prepared = populations.map((p) => ({ label: p.label, init: p.init, errors: p.obs.map((o) => o.error), params: p.obs.map((o) => o.params) }));
  const ref = prepared[0];
  return prepared.map((p, i) => {
    const comparable = i > 0 && p.errors.length > 0 && ref.errors.length > 0;
    const shared = comparable ? sharedBinWeights(ref.params, p.params, edges) : null;
    return {
      label: p.label,
      ...(p.init !== undefined ? { init: p.init } : {}),
      summary: summarize(p.errors),
      edf: edf(p.errors),
      normalizedEdf: p.errors.length ? edf(p.errors, complexityWeights(p.params, edges)) : [],
      ks: comparable ? ksDistance(ref.errors, p.errors) : null,
      ksPValue: comparable ? permutationTest(ref.errors, p.errors, (x, y) => ksDistance(x, y), { permutations: 1000, seed: p.label }).p : null,
      ksNormalized: shared && shared.bins ? ksDistance(ref.errors, p.errors, shared.weightsA, shared.weightsB) : null,
      sharedShare: shared ? { reference: shared.shareA, population: shared.shareB } : null,
    };
  });
}

/** The level at which a refined round counts as better than its parent. */
export const ROUND_ALPHA = 0.05;

export interface RoundComparison {
  parent: ErrorSummary;
  child: ErrorSummary;
  /** Two-sided KS distance and its permutation p-value (is the child different?). */
  ks: number;
  pValue: number;
  /** One-sided D+: the largest amount by which the child's error EDF lies above the parent's (is the child better?). */
  lead: number;
  /** Permutation p-value of `lead`: how often shuffling round labels puts a child's EDF at least that far above. */
  leadPValue: number;
  permutations: number;
  alpha: number;
  /** The decision: the child is better than its parent at this level, by the one-sided test. */
  better: boolean;
  /** One sentence: the decision and why. */
  text: string;
}

/**
 * A refined round against its parent at equal budget: is the child better? Min and mean summarise; the decision is
 * the one-sided EDF gap D+ (child above parent: more of the child's candidates at every error level or below) with a
 * seeded permutation p-value, which asks only the direction that matters; test/campaign-rounds.test.ts measures its
 * rate on noise and its power on a planted shift.
 */
export function compareRounds(
  parent: readonly number[],
  child: readonly number[],
  options: { permutations?: number; seed?: number | string; alpha?: number } = {},
): RoundComparison | null {
  if (!parent.length || !child.length) return null;
  const permutations = options.permutations ?? 2000;
  const seed = options.seed ?? 0;
  const alpha = options.alpha ?? ROUND_ALPHA;
  const two = permutationTest(parent, child, (a, b) => ksDistance(a, b), { permutations, seed });
  // D+ takes few values (multiples of 1/(n_parent n_child) at most), so many shuffles tie with the observed gap and the
  // test would sit well below its level (3% at 5% for 48 against 24). Ties are broken by the mean gap, squeezed below
  // the spacing of D+'s values, so the order of distinct D+ values is kept and the statistic is nearly continuous.
  const pooled = [...parent, ...child];
  const m = pooled.reduce((x, y) => x + y, 0) / pooled.length;
  const scale = Math.sqrt(pooled.reduce((x, y) => x + (y - m) ** 2, 0) / pooled.length) || 1;
  const meanOf = (xs: readonly number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const tieBreak = 0.5 / (parent.length * child.length + 1);
  const statistic = (a: readonly number[], b: readonly number[]) => edfLead(b, a) + tieBreak * (0.5 + 0.5 * Math.tanh((meanOf(a) - meanOf(b)) / scale));
  const one = permutationTest(parent, child, statistic, { permutations, seed: `${seed}/lead` });
  const lead = edfLead(child, parent);
  const better = one.p <= alpha;
  const gap = `its error EDF lies up to ${lead.toFixed(3)} above the parent's (one-sided permutation p = ${one.p.toFixed(3)})`;
  const text = better ? `the child round is better than its parent: ${gap}` : `no evidence that the child round is better than its parent at ${Math.round(100 * alpha)}%: ${gap}`;
  return {
    parent: summarize(parent), child: summarize(child), ks: two.observed, pValue: two.p, lead, leadPValue: one.p,
    permutations, alpha, better, text,
  };
}

/** Each round after the first against the round before it (its parent), on rung-0 validation errors of the candidates. */
export function successiveRounds(trials: readonly TrialLike[], seed: number | string, options: { permutations?: number } = {}): Array<{ round: number; comparison: RoundComparison }> {
  const obs = observations(trials);
  const rounds = [...new Set(obs.map((o) => o.round))].sort((a, b) => a - b);
  const errors = (r: number) => obs.filter((o) => o.round === r).map((o) => o.error);
  return rounds.slice(1).flatMap((r) => {
    const comparison = compareRounds(errors(r - 1), errors(r), { seed: `${seed}/round${r}`, permutations: options.permutations });
    return comparison ? [{ round: r, comparison }] : [];
  });
}
