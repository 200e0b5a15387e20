/**
 * Westfall–Young max-T over linear rank statistics: every candidate change is a contrast over the trials, its
 * statistic the standardised rank association of FLOPs-adjusted error with it, and family-wise adjusted
 * p-values come from permuting the adjusted errors across configurations (Freedman–Lane).
 */
import { makeRng } from '../util/rng.js';

/** A candidate's contrast: centred scores over the trials; a positive statistic means high score goes with low error. */
export interface Contrast {
  scores: Float64Array;
  /** A second contrast that must hold too: the statistic is the smaller of the two (one-sided only). */
  also?: Float64Array;
  /** Whether either sign counts (the statistic is |z|; the sign picks the direction of the change). */
  twoSided: boolean;
}

export interface MaxTResult {
  /** Signed z of each contrast on the observed errors (positive: high score, low error). */
  z: Float64Array;
  /** Family-wise adjusted p-values over every contrast, (1 + permutations as extreme) / (1 + permutations). */
  adjustedP: Float64Array;
  permutations: number;
}

/** Centres values in place and returns them (a contrast must sum to zero). */
export function centred(values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values);
  let mean = 0;
  for (let i = 0; i < out.length; i++) mean += out[i];
  mean /= out.length || 1;
  for (let i = 0; i < out.length; i++) out[i] -= mean;
  return out;
}

/** Mid-ranks (1-based) of values into `out`, ties sharing the mean of their ranks; `order` is scratch space. */
export function ranksInto(values: Float64Array, order: Int32Array, out: Float64Array): void {
  const n = values.length;
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => values[a] - values[b]);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]] = r;
    i = j + 1;
  }
}

/**
 * Removes what covariates explain: the orthonormal basis of [1, covariates] by Gram–Schmidt (columns
 * that add nothing are dropped), so each projection costs O(n). Returns the residual maker.
 */
export function residualizer(covariates: readonly ArrayLike<number>[], n: number): (v: Float64Array) => void {
  const basis: Float64Array[] = [];
  for (const column of [new Float64Array(n).fill(1), ...covariates.map((c) => Float64Array.from(c))]) {
    const q = Float64Array.from(column);
    const before = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
    for (const b of basis) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += b[i] * q[i];
      for (let i = 0; i < n; i++) q[i] -= dot * b[i];
    }
    const norm = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
    if (norm <= 1e-8 * Math.max(1, before)) continue;
    for (let i = 0; i < n; i++) q[i] /= norm;
    basis.push(q);
  }
  return (v) => {
    for (const b of basis) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += b[i] * v[i];
      for (let i = 0; i < n; i++) v[i] -= dot * b[i];
    }
  };
}

/** Signed standardised statistics of every contrast against one rank vector, written into `z`. */
function statistics(ranks: Float64Array, contrasts: readonly Contrast[], norms: Float64Array, alsoNorms: Float64Array, z: Float64Array): void {
  const n = ranks.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += ranks[i];
  mean /= n;
  let spread = 0;
  for (let i = 0; i < n; i++) spread += (ranks[i] - mean) ** 2;
  // Under permutation, sum(a r) has mean 0 and variance |a|^2 spread / (n - 1).
  const scale = Math.sqrt(spread / (n - 1));
  const standard = (a: Float64Array, norm: number) => {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += a[i] * ranks[i];
    return scale > 0 && norm > 0 ? -dot / (norm * scale) : 0;
  };
  for (let k = 0; k < contrasts.length; k++) {
    const c = contrasts[k];
    z[k] = standard(c.scores, norms[k]);
    if (c.also) z[k] = Math.min(z[k], standard(c.also, alsoNorms[k]));
  }
}

const tested = (z: number, c: Contrast) => (c.twoSided ? Math.abs(z) : z);

/** Count of sorted (ascending) values at least x. */
function atLeast(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] >= x) hi = mid;
    else lo = mid + 1;
  }
  return sorted.length - lo;
}

/**
 * Adjusted p-values of every contrast. `errors` are adjusted by `adjust` (residuals on the covariates);
 * each permutation shuffles those residuals across configurations, adjusts again and recomputes every
 * statistic, so the whole selection (the best candidate of every tier) is redone on every permutation.
 *
 * Contrasts fall into tiers (a rule, or one kind of change of a rule), each with a share of alpha: inside
 * a tier the strongest statistic is referred to the permutation distribution of the tier's maximum
 * (max-T, so correlated candidates cost nothing); across tiers the weighted minimum of those tier p-values
 * (min over tiers of p / weight) is referred to its own permutation distribution. A candidate is accepted
 * where the share of permutations whose weighted minimum is as small reaches at most alpha: the family-wise
 * rate over every candidate of every tier is alpha, and with one tier this is plain single-step max-T.
 */
export function maxTAdjust(
  errors: readonly number[],
  contrasts: readonly Contrast[],
  options: { permutations: number; seed: number | string; adjust?: (v: Float64Array) => void; tiers?: ArrayLike<number>; weights?: ArrayLike<number> },
): MaxTResult {
  const n = errors.length;
  const K = contrasts.length;
  const P = options.permutations;
  const tiers = options.tiers ?? new Int32Array(K);
  const T = K ? Math.max(...Array.from(tiers)) + 1 : 0;
  const weights = options.weights ?? new Float64Array(T).fill(1 / Math.max(1, T));
  const adjust = options.adjust ?? (() => undefined);
  const norms = Float64Array.from(contrasts, (c) => Math.sqrt(c.scores.reduce((s, x) => s + x * x, 0)));
  const alsoNorms = Float64Array.from(contrasts, (c) => (c.also ? Math.sqrt(c.also.reduce((s, x) => s + x * x, 0)) : 0));
  const residual = Float64Array.from(errors);
  adjust(residual);
  const order = new Int32Array(n);
  const ranks = new Float64Array(n);
  ranksInto(residual, order, ranks);
  const z = new Float64Array(K);
  statistics(ranks, contrasts, norms, alsoNorms, z);
  const observed = Float64Array.from(z, (v, k) => tested(v, contrasts[k]));
  // Each tier's maximum on every permutation, tier by tier.
  const maxima = Array.from({ length: T }, () => new Float64Array(P).fill(-Infinity));
  const rng = makeRng(options.seed, 'refine/max-t');
  const shuffled = new Float64Array(n);
  const permuted = new Float64Array(K);
  for (let p = 0; p < P; p++) {
    shuffled.set(residual);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = shuffled[i];
      shuffled[i] = shuffled[j];
      shuffled[j] = t;
    }
    adjust(shuffled);
    ranksInto(shuffled, order, ranks);
    statistics(ranks, contrasts, norms, alsoNorms, permuted);
    for (let k = 0; k < K; k++) {
      const v = tested(permuted[k], contrasts[k]);
      if (v > maxima[tiers[k]][p]) maxima[tiers[k]][p] = v;
    }
  }
  const sorted = maxima.map((m) => Float64Array.from(m).sort());
  // The weighted minimum tier p-value of every permutation (each permutation's tier maximum judged against its column).
  const weightedMin = new Float64Array(P).fill(Infinity);
  for (let r = 0; r < T; r++) {
    for (let p = 0; p < P; p++) {
      const q = atLeast(sorted[r], maxima[r][p] - 1e-12) / P;
      weightedMin[p] = Math.min(weightedMin[p], q / weights[r]);
    }
  }
  weightedMin.sort();
  const adjustedP = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const q = (1 + atLeast(sorted[tiers[k]], observed[k] - 1e-12)) / (1 + P);
    // Permutations whose weighted minimum is at most this candidate's weighted tier p-value.
    const bound = q / weights[tiers[k]] + 1e-12;
    let lo = 0;
    let hi = P;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (weightedMin[mid] <= bound) lo = mid + 1;
      else hi = mid;
    }
    adjustedP[k] = (1 + lo) / (1 + P);
  }
  return { z, adjustedP, permutations: P };
}
