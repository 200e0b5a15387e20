/**
 * Re-seeded finalists against the uniform reference: each finalist's K fresh runs against the reference's seeds, seed
 * for seed where the seed indices pair, one-sided, with the family-wise rate over the F finalists held at alpha.
 *
 * Why this test and not the best-of-N rule. A finalist was chosen because its search run looked good, but its
 * re-seeded runs are fresh draws: trained from scratch with seeds that played no part in the selection, so their
 * errors carry no winner's curse and a plain test of "finalist mean below reference mean" is valid for each one. What
 * remains is the choice among F finalists, which Holm's step-down correction covers (the F tests share the
 * reference's seeds, so they are positively correlated and Holm sits a little below alpha, not far below).
 *
 * Pairing. Finalist seed k uses the reference's seed k (same data order and augmentation), so the two share whatever
 * that seed does to any network; the difference f_k - r_k cancels it. Where every seed on both sides pairs, the test
 * is a paired t on the differences (K - 1 df). Where none pairs (seeds failed on one side and not the other, or an old
 * store), Welch's unpaired t. In between (say 5 finalist seeds against 3 reference seeds), every seed is used: the
 * difference of the two means, whose variance s_f^2/n_f + s_r^2/n_r - 2 n_p s_fr/(n_f n_r) subtracts the covariance
 * the n_p pairs measure, referred to t with n_p - 1 df (the covariance has no more); this reduces to the paired t when
 * all seeds pair. It is conservative (about 2% at alpha 5% for 5 finalist seeds against 3; Welch's df instead gave
 * about 7%, too liberal). test/finalists.test.ts measures the null rate and the power of all three.
 */
import * as ss from 'simple-statistics';
import { holmAdjust, studentLowerTail, studentQuantile } from './significance.js';

/** One seed's error; runs pair across the two sides where their seedIndex is equal (null never pairs). */
export interface SeedError {
  seedIndex: number | null;
  error: number;
}

export type SeedMethod = 'paired' | 'partly paired' | 'unpaired';

export interface SeedDifference {
  /** Mean of the finalist's seeds minus mean of the reference's (negative: the finalist has the lower error). */
  difference: number;
  /** Standard error of the difference and the degrees of freedom of its t reference. */
  se: number;
  df: number;
  pairs: number;
  method: SeedMethod;
  /** One-sided p of "the finalist's expected error is below the reference's". */
  p: number;
}

const mean = (xs: readonly number[]) => ss.mean(xs as number[]);
const variance = (xs: readonly number[]) => ss.sampleVariance(xs as number[]);

/** The seed-for-seed comparison of one finalist with the reference; null where the seeds cannot measure noise. */
export function seedDifference(finalist: readonly SeedError[], reference: readonly SeedError[]): SeedDifference | null {
  const f = finalist.map((s) => s.error);
  const r = reference.map((s) => s.error);
  const byIndex = new Map(reference.filter((s) => s.seedIndex !== null).map((s) => [s.seedIndex, s.error]));
  const pairs = finalist.filter((s) => s.seedIndex !== null && byIndex.has(s.seedIndex)).map((s) => [s.error, byIndex.get(s.seedIndex)!] as const);
  const np = pairs.length;
  let difference: number;
  let se2: number;
  let df: number;
  let method: SeedMethod;
  if (np >= 2 && np === f.length && np === r.length) {
    const d = pairs.map(([a, b]) => a - b);
    difference = mean(d);
    se2 = variance(d) / np;
    df = np - 1;
    method = 'paired';
  } else {
    if (f.length < 2 || r.length < 2) return null;
    difference = mean(f) - mean(r);
    const vf = variance(f) / f.length;
    const vr = variance(r) / r.length;
    const welch = vf + vr;
    if (np >= 2) {
      const mf = mean(pairs.map(([a]) => a));
      const mr = mean(pairs.map(([, b]) => b));
      const cov = pairs.reduce((s, [a, b]) => s + (a - mf) * (b - mr), 0) / (np - 1);
      const corrected = welch - (2 * np * cov) / (f.length * r.length);
      // A covariance from few pairs can exceed what the two variances allow; where it would leave none, fall back to Welch's.
      se2 = corrected > 0 ? corrected : welch;
      df = np - 1;
      method = 'partly paired';
    } else {
      se2 = welch;
      df = (welch * welch) / ((vf * vf) / (f.length - 1) + (vr * vr) / (r.length - 1));
      method = 'unpaired';
    }
  }
  // Errors equal up to float rounding measure no noise.
  if (!(se2 > 1e-18 * Math.max(1, difference * difference))) return null;
  const se = Math.sqrt(se2);
  return { difference, se, df, pairs: np, method, p: studentLowerTail(difference / se, df) };
}

export interface FinalistInput {
  /** The candidate trial the finalist re-seeds. */
  candidate: number;
  /** Its completed re-seeded runs. */
  seeds: readonly SeedError[];
}

export type FinalistsVerdictKind = 'better' | 'noise' | 'not-better' | 'insufficient';

export interface FinalistTest extends FinalistInput {
  /** 1-based, in the order the finalists were created (the top rung's ranking). */
  rank: number;
  mean: number | null;
  /** Seed-to-seed sample sd of the finalist's runs. */
  sd: number | null;
  test: SeedDifference | null;
  /** Two-sided (1 - 2 alpha) interval of the difference: its upper end is the one-sided bound the test uses. */
  interval: [number, number] | null;
  /** Holm-adjusted p over the F finalists (a finalist without a test counts as p = 1). */
  adjusted: number | null;
  better: boolean;
}

export interface FinalistsDecision {
  alpha: number;
  finalists: FinalistTest[];
  verdict: FinalistsVerdictKind;
  /** The finalist the sentence is about: the largest significant gain, else the lowest mean difference. */
  lead: FinalistTest | null;
}

/** The decision from numbers alone: what the trials' comparison and the calibration test share. */
export function finalistsDecision(finalists: readonly FinalistInput[], reference: readonly SeedError[], alpha: number): FinalistsDecision {
  const tests = finalists.map((x, i) => {
    const errors = x.seeds.map((s) => s.error);
    const test = seedDifference(x.seeds, reference);
    const half = test ? studentQuantile(1 - alpha, test.df) * test.se : 0;
    return {
      ...x,
      rank: i + 1,
      mean: errors.length ? mean(errors) : null,
      sd: errors.length >= 2 ? Math.sqrt(variance(errors)) : null,
      test,
      interval: test ? ([test.difference - half, test.difference + half] as [number, number]) : null,
      adjusted: null as number | null,
      better: false,
    };
  });
  const adjusted = holmAdjust(tests.map((t) => t.test?.p ?? 1));
  tests.forEach((t, i) => {
    t.adjusted = t.test ? adjusted[i] : null;
    t.better = t.test !== null && adjusted[i] <= alpha;
  });
  const tested = tests.filter((t) => t.test);
  const passing = tests.filter((t) => t.better).sort((a, b) => a.test!.difference - b.test!.difference);
  const lowest = [...tested].sort((a, b) => a.test!.difference - b.test!.difference)[0] ?? null;
  const verdict: FinalistsVerdictKind = !tested.length ? 'insufficient' : passing.length ? 'better' : lowest!.test!.difference < 0 ? 'noise' : 'not-better';
  return { alpha, finalists: tests, verdict, lead: passing[0] ?? lowest };
}

const points = (x: number) => `${(100 * Math.abs(x)).toFixed(2)} points`;
/** A p-value as printed: three decimals, or "< 0.001". */
export const pValueText = (p: number) => (p < 0.001 ? '< 0.001' : p.toFixed(3));
/** A difference in error as signed points ("+1.16", "-0.71"). */
export const signedPoints = (x: number) => `${x <= 0 ? '' : '+'}${(100 * x).toFixed(2)}`;

/** How the seeds were compared, in words. */
export function methodText(t: SeedDifference, finalistSeeds: number, referenceSeeds: number): string {
  if (t.method === 'paired') return `paired over ${t.pairs} seeds`;
  if (t.method === 'unpaired') return `unpaired (Welch), ${finalistSeeds} against ${referenceSeeds} seeds`;
  return `${t.pairs} of ${finalistSeeds} seeds paired with the reference's ${referenceSeeds}`;
}

/** The campaign's verdict sentence. */
export function finalistsText(d: FinalistsDecision, referenceSeeds: number): string {
  const f = d.finalists.length;
  const family = `family-wise over ${f} finalist${f === 1 ? '' : 's'} at ${Math.round(100 * d.alpha)}%`;
  const lead = d.lead;
  const waiting = d.finalists.filter((t) => !t.test).length;
  const pending = waiting ? `; ${waiting} of ${f} finalists have too few finished seeds to test yet` : '';
  if (d.verdict === 'insufficient') {
    return referenceSeeds < 2 && d.finalists.some((t) => t.seeds.length >= 2)
      ? `not enough reference seeds: ${referenceSeeds} finished; at least 2 are needed to compare the finalists with it`
      : `not enough finalist seeds yet: each finalist needs at least 2 finished re-seeded runs (paired) to measure seed noise`;
  }
  const t = lead!.test!;
  const how = `${methodText(t, lead!.seeds.length, referenceSeeds)}, p ${t.p < 0.001 ? '' : '= '}${pValueText(t.p)}, Holm-adjusted ${pValueText(lead!.adjusted!)}, ${family}`;
  const name = `finalist #${lead!.rank} (trial ${lead!.candidate})`;
  if (d.verdict === 'better') return `${name} beats the uniform reference by ${points(t.difference)} (${how})${pending}`;
  if (d.verdict === 'noise') {
    return `no finalist beats the uniform reference beyond noise: the closest, ${name}, is ${points(t.difference)} below it ` +
      `(${how}; ${Math.round(100 * (1 - 2 * d.alpha))}% interval ${signedPoints(lead!.interval![0])} to ${signedPoints(lead!.interval![1])} points)${pending}`;
  }
  return `no finalist beats the uniform reference: every finalist's mean error is at or above the reference mean (closest ${name}, ${signedPoints(t.difference)} points)${pending}`;
}
