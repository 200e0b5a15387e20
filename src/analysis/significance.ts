/** Hypothesis tests the refinement rules rest on: rank-sum, Spearman, Holm's correction, seeded permutation p-values. */
import { makeRng } from '../util/rng.js';

/** ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients; about 15 significant digits). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let s = c[0];
  for (let i = 1; i < 9; i++) s += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    for (const even of [true, false]) {
      const num = even ? (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)) : -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
      if (!even && Math.abs(d * c - 1) < 1e-15) return h;
    }
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The fraction converges fast on the side of the mean; use the symmetry relation on the other.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** Two-sided p-value of Student's t with df degrees of freedom. */
export function studentTwoSided(t: number, df: number): number {
  if (!Number.isFinite(t)) return 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/** P(T <= t) for Student's t with df degrees of freedom: the one-sided p-value of "the mean is below zero". */
export function studentLowerTail(t: number, df: number): number {
  if (t === -Infinity) return 0;
  if (t === Infinity) return 1;
  const half = studentTwoSided(t, df) / 2;
  return t < 0 ? half : 1 - half;
}

/** The q-quantile of Student's t with df degrees of freedom (a doubling bracket, then bisection on the lower tail). */
export function studentQuantile(q: number, df: number): number {
  if (!(q > 0 && q < 1)) throw new Error(`studentQuantile needs 0 < q < 1, got ${q}`);
  let lo = -1;
  let hi = 1;
  while (studentLowerTail(lo, df) > q) lo *= 2;
  while (studentLowerTail(hi, df) < q) hi *= 2;
  return solveIncreasing((t) => studentLowerTail(t, df), q, lo, hi);
}

/** Standard normal CDF (complementary error function, Numerical Recipes' erfc Chebyshev fit, |error| < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/**
 * Two-sided p-value of a Spearman rank correlation rho over n pairs, by the t approximation
 * t = rho sqrt((n - 2) / (1 - rho^2)) with n - 2 degrees of freedom (accurate from n of about 10).
 */
export function spearmanPValue(rho: number, n: number): number {
  if (n < 4 || !Number.isFinite(rho)) return 1;
  if (Math.abs(rho) >= 1) return 0;
  return studentTwoSided(rho * Math.sqrt((n - 2) / (1 - rho * rho)), n - 2);
}

/** Mid-ranks (1-based) of values; tied values share the mean of their ranks. */
export function midRanks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

export interface RankSumTest {
  /** Rank sum of the first sample in the pooled sample (mid-ranks). */
  w: number;
  /** One-sided p-value of "the first sample tends to be smaller". */
  p: number;
  /** Smallest p-value the test could give with these sample sizes (1 / C(N, m) when exact). */
  minP: number;
  method: 'exact' | 'normal';
}

/** Pooled samples up to this size get the exact permutation distribution of the rank sum (conditional on ties). */
const EXACT_RANK_SUM_MAX = 60;

/**
 * Wilcoxon-Mann-Whitney rank-sum test, one-sided: is `a` stochastically smaller than `b`? Exact (the
 * permutation distribution of the mid-rank sum, ties included) for pooled samples up to 60, the normal
 * approximation with tie and continuity corrections above. Empty samples give p = 1.
 */
export function rankSumLess(a: readonly number[], b: readonly number[]): RankSumTest {
  const m = a.length;
  const n = b.length;
  if (!m || !n) return { w: NaN, p: 1, minP: 1, method: 'exact' };
  const N = m + n;
  const ranks = midRanks([...a, ...b]);
  let w = 0;
  for (let i = 0; i < m; i++) w += ranks[i];
  if (N <= EXACT_RANK_SUM_MAX) {
    // Doubled mid-ranks are integers: count size-m subsets by their score sum (a subset-sum table).
    const scores = ranks.map((r) => Math.round(2 * r));
    const total = scores.reduce((s, x) => s + x, 0);
    const dp: Float64Array[] = Array.from({ length: m + 1 }, () => new Float64Array(total + 1));
    dp[0][0] = 1;
    for (const s of scores) {
      for (let k = m; k >= 1; k--) {
        const row = dp[k];
        const prev = dp[k - 1];
        for (let x = total; x >= s; x--) if (prev[x - s]) row[x] += prev[x - s];
      }
    }
    const counts = dp[m];
    let all = 0;
    let below = 0;
    let lowest = -1;
    const obs = Math.round(2 * w);
    for (let x = 0; x <= total; x++) {
      if (!counts[x]) continue;
      all += counts[x];
      if (x <= obs) below += counts[x];
      if (lowest < 0) lowest = x;
    }
    return { w, p: Math.min(1, below / all), minP: counts[lowest] / all, method: 'exact' };
  }
  const ties = new Map<number, number>();
  for (const r of ranks) ties.set(r, (ties.get(r) ?? 0) + 1);
  let tieSum = 0;
  for (const t of ties.values()) tieSum += t * t * t - t;
  const mean = (m * (N + 1)) / 2;
  const variance = ((m * n) / 12) * (N + 1 - tieSum / (N * (N - 1)));
  if (variance <= 0) return { w, p: 1, minP: 1, method: 'normal' };
  const sd = Math.sqrt(variance);
  const z = (w - mean + 0.5) / sd;
  return { w, p: Math.min(1, normalCdf(z)), minP: normalCdf(((m * (m + 1)) / 2 - mean + 0.5) / sd), method: 'normal' };
}

/** Holm's step-down adjusted p-values (family-wise error control), in the input's order. */
export function holmAdjust(pValues: readonly number[]): number[] {
  const k = pValues.length;
  const order = pValues.map((_, i) => i).sort((a, b) => pValues[a] - pValues[b]);
  const adjusted = new Array<number>(k);
  let running = 0;
  order.forEach((i, rank) => {
    running = Math.max(running, Math.min(1, (k - rank) * pValues[i]));
    adjusted[i] = running;
  });
  return adjusted;
}

export interface PermutationTest {
  observed: number;
  /** (1 + permutations at least as extreme) / (1 + permutations): never 0, valid at any count. */
  p: number;
  permutations: number;
}

/**
 * Two-sample permutation test: the labels of the pooled values are shuffled (seeded Fisher-Yates) and
 * `statistic(a, b)` recomputed; large values count as extreme.
 */
export function permutationTest(
  a: readonly number[],
  b: readonly number[],
  statistic: (a: readonly number[], b: readonly number[]) => number,
  options: { permutations?: number; seed?: number | string } = {},
): PermutationTest {
  const permutations = options.permutations ?? 2000;
  const observed = statistic(a, b);
  const pooled = [...a, ...b];
  const rng = makeRng(options.seed ?? 0, 'permutation-test');
  let extreme = 0;
  for (let s = 0; s < permutations; s++) {
    for (let i = pooled.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [pooled[i], pooled[j]] = [pooled[j], pooled[i]];
    }
    // A small tolerance so that ties with the observed value (common for KS) count as extreme.
    if (statistic(pooled.slice(0, a.length), pooled.slice(a.length)) >= observed - 1e-12) extreme++;
  }
  return { observed, p: (1 + extreme) / (1 + permutations), permutations };
}

/** The x in [lo, hi] where an increasing f reaches target, by bisection (quantiles of distributions with a CDF here). */
export function solveIncreasing(f: (x: number) => number, target: number, lo: number, hi: number, iterations = 100): number {
  for (let i = 0; i < iterations; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
