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
 *
 * A rung campaign compares its top-rung candidates at their top-rung error with N = every candidate of rung 0
 * (bestOfNPool says why). A campaign with finalists decides on them instead (finalists.ts: re-seeded runs, no
 * winner's curse, paired with the reference's seeds); the best-of-N verdict stays beside it.
 */
import { normalCdf } from './significance.js';
import { finalistsDecision, finalistsText, methodText, type FinalistTest, type FinalistsVerdictKind } from './finalists.js';
import { best, finalistTrials, observations, populationTrials, referenceTrials, type Observation, type TrialLike } from './population.js';

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
  /** How many candidates the best was selected from (default: all given; a rung campaign passes its rung-0 count). */
  n = candidates.length,
): { verdict: ReferenceVerdict; t: number | null; critical: number | null } {
  const k = seeds.length;
  if (k < 2 || candidates.length === 0) return { verdict: 'insufficient', t: null, critical: null };
  const mean = seeds.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(seeds.reduce((a, x) => a + (x - mean) ** 2, 0) / (k - 1));
  // Seeds equal up to float rounding (a small validation set gives discrete errors) measure no noise either.
  if (!(sd > 1e-9 * Math.max(1, Math.abs(mean)))) return { verdict: 'insufficient', t: null, critical: null };
  const b = Math.min(...candidates);
  const t = (mean - b) / sd;
  const critical = criticalValue(Math.max(n, candidates.length), k, alpha);
  return { verdict: t > critical ? 'better' : b >= mean ? 'not-better' : 'noise', t, critical };
}

export interface ReferenceSeed {
  index: number;
  seed: number | null;
  /** Seed index k (pairs with each finalist's seed k); null in stores before seed indices. */
  seedIndex: number | null;
  error: number;
  testError: number | null;
}

/** One finalist: its candidate, widths and complexity, its re-seeded runs and its test against the reference. */
export interface FinalistComparison extends FinalistTest {
  widths: number[];
  flops: number;
  params: number;
  /** Re-seeded runs created for it, and each completed one (in the order of `seeds`). */
  created: number;
  runs: Array<{ trial: number; seed: number | null; seedIndex: number | null; error: number; testError: number | null }>;
}

/** The finalists' verdict: each finalist's seeds against the reference's, family-wise over the F finalists. */
export interface FinalistsComparison {
  alpha: number;
  finalists: FinalistComparison[];
  verdict: FinalistsVerdictKind;
  text: string;
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
  /**
   * Which errors the best-of-N rule compares: 'final' (a flat campaign: every candidate at the final budget) or
   * 'top-rung' (a rung campaign: the candidates that reached the top rung, at its error, the reference's budget).
   */
  basis: 'final' | 'top-rung';
  /** The top rung (0 in a flat campaign). */
  topRung: number;
  /** N of the rule: the candidates the best was selected from (a rung campaign: every one with a rung-0 error). */
  candidates: number;
  /** Candidates whose error was compared (flat: all N; rung campaign: those at the top rung). */
  compared: number;
  /** The best candidates by the compared error (up to `top`). */
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
  /** The best-of-N rule's verdict and sentence. */
  bestVerdict: ReferenceVerdict;
  bestText: string;
  /** Campaigns with finalists: their verdict, which is then the campaign's. */
  finalists: FinalistsComparison | null;
  /** The campaign's verdict: the finalists' where it has finalists, else the best-of-N rule's. */
  verdict: ReferenceVerdict;
  /** One sentence: the verdict and why. */
  text: string;
}

const points = (x: number) => `${(100 * x).toFixed(2)} points`;
const pctText = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * The candidates the best-of-N rule compares with a reference trained at the final budget, and the N it must use.
 *
 * Flat campaign: every candidate, at its (final-budget) error; N is their number. Rung campaign: rung-0 errors are at
 * a lower budget than the reference's, so only candidates that reached the top rung are compared, at their top-rung
 * error (trained exactly as at the final budget from the start). They were selected by noisy lower-rung errors, which
 * are correlated with their top-rung errors through the same run, so the best of them is not the best of M independent
 * draws (M = top-rung count): using M would fire too often. But each of the N candidates that entered rung 0 has a
 * final-budget error it would have reached, and the best over the promoted subset is never below the best over all
 * N of them. So N = the rung-0 count keeps the rule at most alpha under the same null, whatever the correlation
 * between rungs: exact when rung-0 ranks perfectly, conservative otherwise (test/reference.test.ts measures both).
 */
function bestOfNPool(trials: readonly TrialLike[], refs: readonly TrialLike[]): { basis: 'final' | 'top-rung'; topRung: number; n: number; compared: Observation[] } {
  const obs = observations(trials);
  const samples = populationTrials(trials);
  const topRung = Math.max(0, ...refs.map((t) => t.rung ?? 0), ...samples.flatMap((t) => (t.rungResults ?? []).map((r) => r.rung)));
  if (topRung === 0) return { basis: 'final', topRung, n: obs.length, compared: obs };
  const atTop = new Map<number, { valError: number; testError: number | null }>();
  for (const t of samples) {
    const top = (t.rungResults ?? []).find((r) => r.rung === topRung && Number.isFinite(r.valError));
    if (top) atTop.set(t.index, { valError: top.valError, testError: top.testError });
  }
  const compared = obs.filter((o) => atTop.has(o.index)).map((o) => ({ ...o, error: atTop.get(o.index)!.valError, testError: atTop.get(o.index)!.testError }));
  return { basis: 'top-rung', topRung, n: obs.length, compared };
}

/** The finalists' seeds against the reference's, in the order the finalists were created; null without finalist trials. */
function compareFinalists(trials: readonly TrialLike[], reference: readonly ReferenceSeed[], alpha: number): FinalistsComparison | null {
  const runs = finalistTrials(trials).sort((a, b) => a.index - b.index);
  if (!runs.length) return null;
  const candidates = [...new Set(runs.map((t) => t.finalistOf ?? -1))];
  const done = (t: TrialLike) => t.state === 'complete' && t.valError !== null && Number.isFinite(t.valError);
  const inputs = candidates.map((c) => {
    const mine = runs.filter((t) => (t.finalistOf ?? -1) === c);
    const finished = mine.filter(done);
    return { mine, finished, input: { candidate: c, seeds: finished.map((t) => ({ seedIndex: t.seedIndex ?? null, error: t.valError! })) } };
  });
  const decision = finalistsDecision(inputs.map((x) => x.input), reference.map((s) => ({ seedIndex: s.seedIndex, error: s.error })), alpha);
  const finalists = decision.finalists.map((f, i) => ({
    ...f,
    widths: inputs[i].mine[0].widths,
    flops: inputs[i].mine[0].complexity.flops,
    params: inputs[i].mine[0].complexity.params,
    created: inputs[i].mine.length,
    runs: inputs[i].finished.map((t) => ({ trial: t.index, seed: t.seed ?? null, seedIndex: t.seedIndex ?? null, error: t.valError!, testError: t.testError })),
  }));
  return { alpha, finalists, verdict: decision.verdict, text: finalistsText(decision, reference.length) };
}

/**
 * Compares the best completed candidates with the completed reference seeds, and the finalists where the campaign has
 * them; null when the trials hold no reference trial at all (a campaign without one).
 */
export function compareWithReference(
  trials: readonly TrialLike[],
  opts: { planned?: number; top?: number; alpha?: number } = {},
): ReferenceComparison | null {
  const refs = referenceTrials(trials);
  if (!refs.length) return null;
  const alpha = opts.alpha ?? REFERENCE_ALPHA;
  const done = refs.filter((t) => t.state === 'complete' && t.valError !== null && Number.isFinite(t.valError));
  const seeds: ReferenceSeed[] = done.map((t) => ({ index: t.index, seed: t.seed ?? null, seedIndex: t.seedIndex ?? null, error: t.valError!, testError: t.testError }));
  const pool = bestOfNPool(trials, refs);
  const top = best(pool.compared, opts.top ?? 3);
  const k = seeds.length;
  const errors = seeds.map((s) => s.error);
  const mean = k ? errors.reduce((a, b) => a + b, 0) / k : null;
  const sd = k >= 2 && mean !== null ? Math.sqrt(errors.reduce((a, x) => a + (x - mean) ** 2, 0) / (k - 1)) : null;
  const tests = seeds.map((s) => s.testError).filter((x): x is number => x !== null);
  const n = pool.n;
  const decision = referenceDecision(pool.compared.map((o) => o.error), errors, alpha, n);
  const bestError = top[0]?.error ?? null;
  const difference = bestError !== null && mean !== null ? bestError - mean : null;
  const threshold = decision.critical !== null && mean !== null && sd !== null ? mean - decision.critical * sd : null;
  const pValue = decision.t !== null ? nullTail(decision.t, Math.max(n, pool.compared.length), k) : null;
  const planned = opts.planned ?? null;
  // "the best of 48" in a flat campaign; "the best of the 6 top-rung candidates (chosen from 48)" in a rung campaign.
  const theBest = pool.basis === 'final' ? `the best of ${n} candidates` : `the best of the ${pool.compared.length} top-rung candidates (chosen from ${n})`;
  let text: string;
  if (decision.verdict === 'insufficient') {
    const need = `${k} of ${planned ?? refs.length} reference seed(s) finished`;
    text =
      k < 2 ? `not enough reference seeds: ${need}; at least 2 are needed to measure seed-to-seed noise`
      : pool.compared.length === 0 ? (pool.basis === 'final' ? 'no completed candidate yet to compare with the reference' : `no candidate has reached the top rung (rung ${pool.topRung}) yet to compare with the reference`)
      : `not enough reference seeds: the ${k} seeds gave identical errors, so seed-to-seed noise cannot be measured`;
  } else if (decision.verdict === 'better') {
    text =
      `the best candidate beats the uniform reference beyond noise: ${points(-difference!)} lower, past the ${pctText(threshold!)} ` +
      `that the best of ${n} would reach by chance in ${Math.round(100 * alpha)}% of campaigns with no candidate better than uniform (p = ${pValue!.toFixed(3)})`;
  } else if (decision.verdict === 'noise') {
    const bar = threshold! > 0 ? `it would need to be below ${pctText(threshold!)}` : `with this seed spread no error could count (the bar, ${pctText(threshold!)}, is below zero); more reference seeds lower it`;
    text =
      `not distinguishable from noise: ${theBest} is ${points(-difference!)} below the reference mean, but the best of ${n} ` +
      `draws of the reference's own seed noise gets that low in ${pctText(pValue!)} of campaigns; ${bar}`;
  } else {
    text = `no candidate beats the uniform reference: ${theBest} is ${points(difference!)} above the reference mean`;
  }
  const finalists = compareFinalists(trials, seeds, alpha);
  return {
    planned,
    created: refs.length,
    seeds,
    widths: refs[0].widths,
    flops: refs[0].complexity.flops,
    mean,
    sd,
    testMean: tests.length ? tests.reduce((a, b) => a + b, 0) / tests.length : null,
    basis: pool.basis,
    topRung: pool.topRung,
    candidates: n,
    compared: pool.compared.length,
    best: top,
    difference,
    t: decision.t,
    critical: decision.critical,
    threshold,
    pValue,
    alpha,
    bestVerdict: decision.verdict,
    bestText: text,
    finalists,
    verdict: finalists ? finalists.verdict : decision.verdict,
    text: finalists ? finalists.text : text,
  };
}

/** One row of the finalists' table: a finalist (or the reference) with its error at each seed index. */
export interface SeedTableRow {
  role: 'finalist' | 'reference';
  /** Finalist #rank; null for the reference. */
  rank: number | null;
  /** The candidate trial a finalist re-seeds; null for the reference. */
  candidate: number | null;
  widths: number[] | null;
  flops: number | null;
  params: number | null;
  /** Validation error per seed index of the table (null: no finished run at that index). */
  errors: (number | null)[];
  mean: number | null;
  sd: number | null;
  difference: number | null;
  interval: [number, number] | null;
  method: string | null;
  p: number | null;
  adjusted: number | null;
}

/** The finalists and the reference side by side, one column per seed index (what status and the report print). */
export function finalistsTable(r: ReferenceComparison): { seedIndices: number[]; rows: SeedTableRow[] } | null {
  if (!r.finalists) return null;
  const key = (s: { seedIndex: number | null }, i: number) => s.seedIndex ?? i;
  const seedIndices = [...new Set([...r.seeds.map(key), ...r.finalists.finalists.flatMap((f) => f.seeds.map(key))])].sort((a, b) => a - b);
  const column = (seeds: readonly { seedIndex: number | null; error: number }[]) => {
    const at = new Map(seeds.map((s, i) => [key(s, i), s.error]));
    return seedIndices.map((k) => at.get(k) ?? null);
  };
  const rows: SeedTableRow[] = r.finalists.finalists.map((f) => ({
    role: 'finalist', rank: f.rank, candidate: f.candidate, widths: f.widths, flops: f.flops, params: f.params,
    errors: column(f.seeds), mean: f.mean, sd: f.sd, difference: f.test?.difference ?? null, interval: f.interval,
    method: f.test ? methodText(f.test, f.seeds.length, r.seeds.length) : null, p: f.test?.p ?? null, adjusted: f.adjusted,
  }));
  rows.push({
    role: 'reference', rank: null, candidate: null, widths: r.widths, flops: r.flops, params: null, errors: column(r.seeds),
    mean: r.mean, sd: r.sd, difference: null, interval: null, method: null, p: null, adjusted: null,
  });
  return { seedIndices, rows };
}

/** What the finalists' test is, for the report and README. */
export function finalistsRuleText(alpha = REFERENCE_ALPHA): string {
  return (
    `Finalists are retrained from scratch with fresh seeds, so their errors carry no winner's curse. Each finalist's seed k uses ` +
    `the reference's seed k (same data order and augmentation), and the test is a one-sided paired t on the differences ` +
    `(Welch's t where seeds do not pair), using every seed; Holm's correction over the F finalists keeps the chance that any ` +
    `finalist is called better when none is at ${Math.round(100 * alpha)}% or less. The interval is the ${Math.round(100 * (1 - 2 * alpha))}% ` +
    `two-sided one, whose upper end is the one-sided bound the test uses.`
  );
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
