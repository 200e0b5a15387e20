/** The rows analysis works on: completed trials with their validation error and complexity, as plain data. */
import type { TrialRecord } from '../campaign/types.js';
import type { WidthConfig } from '../nets/types.js';

/**
 * The fields of a TrialRecord that analysis reads; tests and other stores can supply just these (no role: a sample).
 * Multi-fidelity stores add rungs; finalists name their candidate (finalistOf) and, like reference seeds, a seedIndex
 * that pairs them seed for seed.
 */
export type TrialLike = Pick<TrialRecord, 'index' | 'round' | 'widths' | 'complexity' | 'state' | 'valError' | 'testError'> &
  Partial<Pick<TrialRecord, 'curves' | 'role' | 'seed' | 'latencyMs' | 'predictedLatencyMs' | 'rung' | 'rungResults' | 'finalistOf' | 'seedIndex'>>;

/** The sampled population: every trial but the uniform reference's seeds and the finalists' re-seeds, compared with, never pooled in. */
export function populationTrials<T extends TrialLike>(trials: readonly T[]): T[] {
  return trials.filter((t) => (t.role ?? 'sample') === 'sample');
}

/** The finalists' re-seeded runs. */
export function finalistTrials<T extends TrialLike>(trials: readonly T[]): T[] {
  return trials.filter((t) => t.role === 'finalist');
}

/**
 * A candidate's rung-0 validation error, where every candidate has the same fidelity: the first rung's result
 * where the store records rungs (promoted and pruned candidates alike), else the trial's own error once complete.
 */
export function rungZeroError(t: TrialLike): number | null {
  const first = t.rungResults?.find((r) => r.rung === 0);
  if (first && Number.isFinite(first.valError)) return first.valError;
  return t.state === 'complete' && t.valError !== null && Number.isFinite(t.valError) ? t.valError : null;
}

/** A trial's validation error recorded at `rung` (null where it did not reach that rung or the result is not finite). */
export function rungError(t: TrialLike, rung: number): number | null {
  const r = t.rungResults?.find((x) => x.rung === rung);
  return r && Number.isFinite(r.valError) ? r.valError : null;
}

/** A candidate's error at the highest rung it reached, where rungs are recorded (null for flat trials). */
export function topRungError(t: TrialLike): { rung: number; valError: number } | null {
  const results = (t.rungResults ?? []).filter((r) => Number.isFinite(r.valError));
  if (!results.length) return null;
  const top = results.reduce((a, b) => (b.rung > a.rung ? b : a));
  return { rung: top.rung, valError: top.valError };
}

/** The uniform reference's seeds. */
export function referenceTrials<T extends TrialLike>(trials: readonly T[]): T[] {
  return trials.filter((t) => t.role === 'reference');
}

export interface Observation {
  index: number;
  round: number;
  /** Rung-0 validation error: the search ranks on validation (every candidate at the same fidelity) and reports test error beside it. */
  error: number;
  testError: number | null;
  widths: WidthConfig;
  flops: number;
  params: number;
  activations: number;
  /** FLOPs per parameter of this subnetwork. */
  ratio: number;
}

/**
 * Candidates with a finite rung-0 validation error, in index order; failed and pending trials carry no evidence,
 * and reference and finalist trials are no candidates (every population statistic starts here).
 */
export function observations(trials: readonly TrialLike[], rung = 0): Observation[] {
  // Above rung 0, the candidates promoted that far, at that rung's error (a campaign in rungs records them).
  const errorOf = (t: TrialLike): number | null => (rung === 0 ? rungZeroError(t) : rungError(t, rung));
  return populationTrials(trials)
    .map((t) => ({ t, error: errorOf(t) }))
    .filter((x): x is { t: TrialLike; error: number } => x.error !== null)
    .map(({ t, error }) => ({
      index: t.index,
      round: t.round,
      error,
      testError: t.rungResults?.find((r) => r.rung === rung)?.testError ?? (rung === 0 ? t.testError : null),
      widths: t.widths,
      flops: t.complexity.flops,
      params: t.complexity.params,
      activations: t.complexity.activations,
      ratio: t.complexity.flops / t.complexity.params,
    }))
    .sort((a, b) => a.index - b.index);
}

/** The k observations with the lowest error (ties broken by index, so the choice is deterministic). */
export function best(obs: readonly Observation[], k: number): Observation[] {
  return [...obs].sort((a, b) => a.error - b.error || a.index - b.index).slice(0, Math.max(0, k));
}

/** How many trials count as winners: the best 10%, at least 3 (pycls-style top fraction). */
export function defaultTopK(n: number): number {
  return Math.min(n, Math.max(3, Math.ceil(0.1 * n)));
}
