/** EDF comparison of populations (campaigns or rounds): plain and parameter-normalised, KS against the first. */
import { complexityWeights, edf, ksDistance, logBinEdges, summarize, type EdfPoint, type ErrorSummary } from './edf.js';
import type { Observation } from './population.js';

export interface Population {
  label: string;
  obs: readonly Observation[];
}

export interface ComparedPopulation {
  label: string;
  summary: ErrorSummary;
  edf: EdfPoint[];
  /** EDF with every parameter bin (shared across the populations) counting equally. */
  normalizedEdf: EdfPoint[];
  /** KS distance to the reference (first) population; null for the reference itself or empty populations. */
  ks: number | null;
  ksNormalized: number | null;
}

export function compareEdfs(populations: readonly Population[], bins = 10): ComparedPopulation[] {
  const edges = logBinEdges(populations.flatMap((p) => p.obs.map((o) => o.params)), bins);
  const prepared = populations.map((p) => {
    const errors = p.obs.map((o) => o.error);
    const weights = complexityWeights(p.obs.map((o) => o.params), edges);
    return { label: p.label, errors, weights };
  });
  const ref = prepared[0];
  return prepared.map((p, i) => ({
    label: p.label,
    summary: summarize(p.errors),
    edf: edf(p.errors),
    normalizedEdf: p.errors.length ? edf(p.errors, p.weights) : [],
    ks: i === 0 || !p.errors.length || !ref.errors.length ? null : ksDistance(ref.errors, p.errors),
    ksNormalized: i === 0 || !p.errors.length || !ref.errors.length ? null : ksDistance(ref.errors, p.errors, ref.weights, p.weights),
  }));
}
