/**
 * Best candidates against the uniform reference: is the best subnetwork better than uniform pruning at the same
 * FLOPs by more than the winner's curse and seed noise explain?
 *
 * The rule. The best of N candidates is the minimum of N noisy errors, so it sits below the mean of its own
 * distribution even when no candidate is better than uniform. Take the reference's K seeds (mean m, sample sd s) and
 * the best candidate's error b, and T = (m - b) / s. Under the null, candidates are N draws from the reference's own
 * seed distribution (normal), and T is pivotal: its law depends on N and K only (m, s and b all scale with the noise).
 * We integrate that law numerically and fire ("the best beats uniform") when P(T >= t_observed) <= alpha, i.e.
 * when b < m - c s with c the upper-alpha point. This accounts for the selection among N (the minimum of N normals)
 * and for the uncertainty of a K-seed mean and sd (s has K - 1 degrees of freedom, which makes c large for small K).
 * If candidates have their own architecture effects and none of them is better than uniform in expectation, each
 * candidate's error is stochastically above a reference draw, so the best is too and the rule fires at most alpha of
 * the time: the identical-distribution null is the least favourable one. test/reference.test.ts measures the rate.
 */
import { normalCdf } from './significance.js';
import { best, observations, referenceTrials, type Observation, type TrialLike } from './population.js';

export const REFERENCE_ALPHA = 0.05;

/** log P(Z > m) for a standard normal Z, accurate in both tails. */
function logSurvival(m: number): number {
  return m < 0 ? Math.log1p(-normalCdf(m)) : Math.log(normalCdf(-m));
}

/** Simpson weights for `intervals` (even) equal steps of width h. */
function simpson(intervals: number, h: number): number[] {
  return Array.from({ length: intervals + 1 }, (_, i) => ((i === 0 || i === intervals ? 1 : i % 2 ? 4 : 2) * h) / 3);
}

interface Grid {
  /** Nodes and normalised weights of the reference mean (N(0, 1/K)) and of the sample sd (chi with K - 1 df, over sqrt(K - 1)). */
  z: number[];
  wz: number[];
  s: number[];
  ws: number[];
}

const grids = new Map<number, Grid>();

function grid(k: number): Grid {
  let g = grids.get(k);
  if (g) return g;
  const nu = k - 1;
  const nz = 120;
  const zmax = 8 / Math.sqrt(k);
  const hz = (2 * zmax) / nz;
  const z = Array.from({ length: nz + 1 }, (_, i) => -zmax + i * hz);
  const sz = simpson(nz, hz);
  let wz = z.map((x, i) => sz[i] * Math.exp((-k * x * x) / 2));
  const tz = wz.reduce((a, b) => a + b, 0);
  wz = wz.map((w) => w / tz);
  // The density of s is proportional to s^(nu-1) exp(-nu s^2 / 2); its mass lies well below smax.
  const ns = 300;
  const smax = Math.sqrt((nu + 10 * Math.sqrt(2 * nu) + 60) / nu);
  // Nodes s = smax u^2 over an even grid in u: dense near 0, where t s changes fastest for large t and few seeds.
  const su = simpson(ns, 1 / ns);
  const s = su.map((_, i) => smax * (i / ns) ** 2);
  let ws = s.map((x, i) => su[i] * 2 * smax * (i / ns) * Math.exp((nu - 1) * Math.log(Math.max(x, 1e-300)) - (nu * x * x) / 2));
  const ts = ws.reduce((a, b) => a + b, 0);
  ws = ws.map((w) => w / ts);
  g = { z, wz, s, ws };
  grids.set(k, g);
  return g;
}

/**
 * P(T >= t) under the null: N candidates and K reference seeds all drawn from one normal distribution, T = (mean of the
 * seeds - min of the candidates) / sd of the seeds. K >= 2.
 */
export function nullTail(t: number, n: number, k: number): number {
  if (!(n >= 1) || !(k >= 2)) throw new Error(`nullTail needs n >= 1 and k >= 2, got n ${n}, k ${k}`);
  const g = grid(k);
  let p = 0;
  for (let i = 0; i < g.s.length; i++) {
    if (g.ws[i] === 0) continue;
    let inner = 0;
    for (let j = 0; j < g.z.length; j++) {
      // P(min of n < z - t s) = 1 - P(one draw > z - t s)^n
      inner += g.wz[j] * -Math.expm1(n * logSurvival(g.z[j] - t * g.s[i]));
    }
    p += g.ws[i] * inner;
  }
  return Math.min(1, Math.max(0, p));
}

const criticalCache = new Map<string, number>();

/** The c with P(T >= c) = alpha under the null: the best must be more than c reference sds below the reference mean. */
export function criticalValue(n: number, k: number, alpha = REFERENCE_ALPHA): number {
  const key = `${n}/${k}/${alpha}`;
  const cached = criticalCache.get(key);
  if (cached !== undefined) return cached;
  // P(T >= c) falls as c grows; bisect to 1e-4 relative (a few hundredths of a per cent in the rate).
  let lo = 0;
  let hi = 4;
  while (nullTail(lo, n, k) <= alpha) lo -= 4;
  while (nullTail(hi, n, k) > alpha) (lo = hi), (hi *= 2);
  for (let i = 0; i < 60 && hi - lo > 1e-4 * Math.max(1, Math.abs(hi)); i++) {
    const mid = (lo + hi) / 2;
    if (nullTail(mid, n, k) > alpha) lo = mid;
    else hi = mid;
  }
  criticalCache.set(key, hi);
  return hi;
}

export type ReferenceVerdict = 'better' | 'noise' | 'not-better' | 'insufficient';

/** The decision alone, from numbers: what status, the report and the calibration test share. */
export function referenceDecision(
  candidates: readonly number[],
  seeds: readonly number[],
  alpha = REFERENCE_ALPHA,
): { verdict: ReferenceVerdict; t: number | null; critical: number | null } {
  const k = seeds.length;
  if (k < 2 || candidates.length === 0) return { verdict: 'insufficient', t: null, critical: null };
  const mean = seeds.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(seeds.reduce((a, x) => a + (x - mean) ** 2, 0) / (k - 1));
  if (!(sd > 0)) return { verdict: 'insufficient', t: null, critical: null };
  const b = Math.min(...candidates);
  const t = (mean - b) / sd;
  const critical = criticalValue(candidates.length, k, alpha);
  return { verdict: t > critical ? 'better' : b >= mean ? 'not-better' : 'noise', t, critical };
}

export interface ReferenceSeed {
  index: number;
  seed: number | null;
  error: number;
  testError: number | null;
}

export interface ReferenceComparison {
  /** Reference seeds the campaign asked for (null when unknown), created, and completed. */
  planned: number | null;
  created: number;
  seeds: ReferenceSeed[];
  widths: number[] | null;
  flops: number | null;
  mean: number | null;
  /** Seed-to-seed sample sd (K - 1 in the denominator). */
  sd: number | null;
  testMean: number | null;
  /** Completed candidates the best was chosen from. */
  candidates: number;
  /** The best candidates by validation error (up to `top`). */
  best: Observation[];
  /** best - reference mean (negative: the best candidate has the lower error). */
  difference: number | null;
  /** T = (reference mean - best) / sd, and the critical value at alpha for this N and K. */
  t: number | null;
  critical: number | null;
  /** The best candidate must have an error below this to count as better than uniform. */
  threshold: number | null;
  /** P(T >= t) under the null. */
  pValue: number | null;
  alpha: number;
  verdict: ReferenceVerdict;
  /** One sentence: the verdict and why. */
  text: string;
}

const points = (x: number) => `${(100 * x).toFixed(2)} points`;
const pctText = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Compares the best completed candidates with the completed reference seeds; null when the trials hold no reference
 * trial at all (a campaign without one).
 */
export function compareWithReference(
  trials: readonly TrialLike[],
  opts: { planned?: number; top?: number; alpha?: number } = {},
): ReferenceComparison | null {
  const refs = referenceTrials(trials);
  if (!refs.length) return null;
  const alpha = opts.alpha ?? REFERENCE_ALPHA;
  const done = refs.filter((t) => t.state === 'complete' && t.valError !== null && Number.isFinite(t.valError));
  const seeds: ReferenceSeed[] = done.map((t) => ({ index: t.index, seed: t.seed ?? null, error: t.valError!, testError: t.testError }));
  const obs = observations(trials);
  const top = best(obs, opts.top ?? 3);
  const k = seeds.length;
  const errors = seeds.map((s) => s.error);
  const mean = k ? errors.reduce((a, b) => a + b, 0) / k : null;
  const sd = k >= 2 && mean !== null ? Math.sqrt(errors.reduce((a, x) => a + (x - mean) ** 2, 0) / (k - 1)) : null;
  const tests = seeds.map((s) => s.testError).filter((x): x is number => x !== null);
  const decision = referenceDecision(obs.map((o) => o.error), errors, alpha);
  const bestError = top[0]?.error ?? null;
  const difference = bestError !== null && mean !== null ? bestError - mean : null;
  const threshold = decision.critical !== null && mean !== null && sd !== null ? mean - decision.critical * sd : null;
  const pValue = decision.t !== null ? nullTail(decision.t, obs.length, k) : null;
  const n = obs.length;
  const planned = opts.planned ?? null;
  let text: string;
  if (decision.verdict === 'insufficient') {
    const need = `${k} of ${planned ?? refs.length} reference seed(s) finished`;
    text =
      k < 2 ? `not enough reference seeds: ${need}; at least 2 are needed to measure seed-to-seed noise`
      : n === 0 ? 'no completed candidate yet to compare with the reference'
      : `not enough reference seeds: the ${k} seeds gave identical errors, so seed-to-seed noise cannot be measured`;
  } else if (decision.verdict === 'better') {
    text =
      `the best candidate beats the uniform reference beyond noise: ${points(-difference!)} lower, past the ${pctText(threshold!)} ` +
      `that the best of ${n} would reach by chance in ${Math.round(100 * alpha)}% of campaigns with no candidate better than uniform (p = ${pValue!.toFixed(3)})`;
  } else if (decision.verdict === 'noise') {
    const bar = threshold! > 0 ? `it would need to be below ${pctText(threshold!)}` : `with this seed spread no error could count (the bar, ${pctText(threshold!)}, is below zero); more reference seeds lower it`;
    text =
      `not distinguishable from noise: the best of ${n} candidates is ${points(-difference!)} below the reference mean, but the best of ${n} ` +
      `draws of the reference's own seed noise gets that low in ${pctText(pValue!)} of campaigns; ${bar}`;
  } else {
    text = `no candidate beats the uniform reference: the best of ${n} is ${points(difference!)} above the reference mean`;
  }
  return {
    planned,
    created: refs.length,
    seeds,
    widths: refs[0].widths,
    flops: refs[0].complexity.flops,
    mean,
    sd,
    testMean: tests.length ? tests.reduce((a, b) => a + b, 0) / tests.length : null,
    candidates: n,
    best: top,
    difference,
    t: decision.t,
    critical: decision.critical,
    threshold,
    pValue,
    alpha,
    verdict: decision.verdict,
    text,
  };
}

/** What the verdict means and how often it fires on noise, for the report and README. */
export function verdictRuleText(alpha = REFERENCE_ALPHA): string {
  return (
    `The best of N candidates is the minimum of N noisy errors, so it looks better than it is (the winner's curse). The verdict says ` +
    `"beats the uniform reference" only when the best candidate's validation error lies further below the reference's seed mean than ` +
    `the best of N draws from the reference's own seed distribution would, allowing for the uncertainty of a mean and sd from K seeds ` +
    `(a pivotal statistic whose null law is integrated exactly for normal noise). When no candidate is better than uniform it fires in ` +
    `${Math.round(100 * alpha)}% of campaigns or fewer. Few seeds make the bar high: more reference seeds lower it.`
  );
}
