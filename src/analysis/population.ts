/** The rows analysis works on: completed trials with their validation error and complexity, as plain data. */
import type { TrialRecord } from '../campaign/types.js';
import type { WidthConfig } from '../nets/types.js';

/** The fields of a TrialRecord that analysis reads; tests and other stores can supply just these (no role: a sample). */
export type TrialLike = Pick<TrialRecord, 'index' | 'round' | 'widths' | 'complexity' | 'state' | 'valError' | 'testError'> &
  Partial<Pick<TrialRecord, 'curves' | 'role' | 'seed' | 'latencyMs'>>;

/** The sampled population: every trial but the uniform reference's seeds and the finalists' re-seeds, compared with, never pooled in. */
export function populationTrials<T extends TrialLike>(trials: readonly T[]): T[] {
  return trials.filter((t) => (t.role ?? 'sample') === 'sample');
}

/** The uniform reference's seeds. */
export function referenceTrials<T extends TrialLike>(trials: readonly T[]): T[] {
  return trials.filter((t) => t.role === 'reference');
}

export interface Observation {
  index: number;
  round: number;
  /** Validation error: the search ranks on validation and reports test error beside it. */
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
 * Completed candidates with a finite validation error, in index order; failed and pending trials carry no evidence,
 * and reference trials are no candidates (every population statistic starts here).
 */
export function observations(trials: readonly TrialLike[]): Observation[] {
  return populationTrials(trials)
    .filter((t) => t.state === 'complete' && t.valError !== null && Number.isFinite(t.valError))
    .map((t) => ({
      index: t.index,
      round: t.round,
      error: t.valError as number,
      testError: t.testError,
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
