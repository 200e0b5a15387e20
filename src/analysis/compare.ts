/** EDF comparison of populations (campaigns or rounds): plain and parameter-normalised, KS against the first. */
import { binOf, complexityWeights, edf, equalBinWeights, ksDistance, logBinEdges, summarize, type EdfPoint, type ErrorSummary } from './edf.js';
import type { Observation } from './population.js';
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

export interface RoundComparison {
  parent: ErrorSummary;
  child: ErrorSummary;
  ks: number;
  /** Permutation p-value of the KS distance: how often shuffling round labels gives a distance at least as large. */
  pValue: number;
  permutations: number;
}

/** A refined round against its parent round: summaries, KS distance and its seeded permutation p-value. */
export function compareRounds(parent: readonly number[], child: readonly number[], options: { permutations?: number; seed?: number | string } = {}): RoundComparison | null {
  if (!parent.length || !child.length) return null;
  const test = permutationTest(parent, child, (a, b) => ksDistance(a, b), { permutations: options.permutations ?? 2000, seed: options.seed ?? 0 });
  return { parent: summarize(parent), child: summarize(child), ks: test.observed, pValue: test.p, permutations: test.permutations };
}
