/** Error distributions of populations: plain and complexity-normalised EDFs, summaries, KS distance. */
import * as ss from 'simple-statistics';

export interface EdfPoint {
  error: number;
  /** Share of the population (by weight) with error at or below `error`. */
  cumulative: number;
}

/** The EDF as its step points, F(e) = weighted share of trials with error <= e; weights default to equal. */
export function edf(errors: readonly number[], weights?: readonly number[]): EdfPoint[] {
  if (weights && weights.length !== errors.length) throw new Error('edf: one weight per error');
  const order = errors.map((_, i) => i).sort((a, b) => errors[a] - errors[b]);
  const w = weights ?? errors.map(() => 1);
  const total = order.reduce((s, i) => s + w[i], 0);
  const points: EdfPoint[] = [];
  let acc = 0;
  for (const i of order) {
    acc += w[i];
    const cumulative = total > 0 ? acc / total : 0;
    // Ties collapse to one step at the highest cumulative share.
    if (points.length && points[points.length - 1].error === errors[i]) points[points.length - 1].cumulative = cumulative;
    else points.push({ error: errors[i], cumulative });
  }
  return points;
}

/** F(e) of a step EDF. */
export function edfAt(points: readonly EdfPoint[], e: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].error <= e) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? 0 : points[lo - 1].cumulative;
}

/** Equal-width bin edges in log space over the pooled values (complexity spans orders of magnitude). */
export function logBinEdges(values: readonly number[], bins: number): number[] {
  const positive = values.filter((v) => v > 0);
  if (!positive.length) return [];
  const min = ss.min(positive);
  const max = ss.max(positive);
  if (min === max) return [min, max];
  const lo = Math.log(min);
  const hi = Math.log(max);
  // The outer edges are the extremes themselves: exp(log(x)) can round past x and drop it from every bin.
  return Array.from({ length: bins + 1 }, (_, i) => (i === 0 ? min : i === bins ? max : Math.exp(lo + ((hi - lo) * i) / bins)));
}

/** Index of the bin holding v (the last bin is closed on the right); -1 outside the edges. */
export function binOf(edges: readonly number[], v: number): number {
  if (edges.length < 2 || v < edges[0] || v > edges[edges.length - 1]) return -1;
  for (let b = 1; b < edges.length; b++) if (v < edges[b]) return b - 1;
  return edges.length - 2;
}

/**
 * Weights under which every occupied complexity bin counts equally, as in "On Network Design Spaces
 * for Visual Recognition": populations with different complexity mixes are then compared fairly.
 * Pass shared `edges` when comparing populations. Values outside the edges weigh zero.
 */
export function complexityWeights(complexities: readonly number[], edges: readonly number[]): number[] {
  return equalBinWeights(complexities.map((c) => binOf(edges, c)));
}

/** Weights under which every bin counts equally, from each trial's bin index (negative: left out, weight 0). */
export function equalBinWeights(bin: readonly number[]): number[] {
  const counts = new Map<number, number>();
  for (const b of bin) if (b >= 0) counts.set(b, (counts.get(b) ?? 0) + 1);
  const occupied = counts.size;
  return bin.map((b) => (b < 0 ? 0 : 1 / (occupied * (counts.get(b) as number))));
}

/** The complexity-normalised EDF of one population. */
export function normalizedEdf(errors: readonly number[], complexities: readonly number[], edges: readonly number[]): EdfPoint[] {
  return edf(errors, complexityWeights(complexities, edges));
}

export interface ErrorSummary {
  n: number;
  min: number | null;
  mean: number | null;
  /** Quantiles at 10, 25, 50, 75 and 90%. */
  quantiles: { p10: number; p25: number; p50: number; p75: number; p90: number } | null;
}

export function summarize(errors: readonly number[]): ErrorSummary {
  if (!errors.length) return { n: 0, min: null, mean: null, quantiles: null };
  const sorted = [...errors].sort((a, b) => a - b);
  const q = (p: number) => ss.quantileSorted(sorted, p);
  return {
    n: sorted.length,
    min: sorted[0],
    mean: ss.mean(sorted),
    quantiles: { p10: q(0.1), p25: q(0.25), p50: q(0.5), p75: q(0.75), p90: q(0.9) },
  };
}

/** Kolmogorov-Smirnov distance: the largest gap between two (weighted) EDFs; 0 for identical samples. */
export function ksDistance(
  a: readonly number[],
  b: readonly number[],
  weightsA?: readonly number[],
  weightsB?: readonly number[],
): number {
  if (!a.length || !b.length) return NaN;
  const fa = edf(a, weightsA);
  const fb = edf(b, weightsB);
  let d = 0;
  for (const e of [...fa, ...fb].map((p) => p.error)) d = Math.max(d, Math.abs(edfAt(fa, e) - edfAt(fb, e)));
  return d;
}

/**
 * One-sided KS distance D+: the largest amount by which a's EDF lies above b's (0 where it never does). A population
 * whose errors are lower has its EDF above, so edfLead(child, parent) measures how far the child is better.
 */
export function edfLead(a: readonly number[], b: readonly number[]): number {
  if (!a.length || !b.length) return NaN;
  const fa = edf(a);
  const fb = edf(b);
  let d = 0;
  for (const p of fa) d = Math.max(d, p.cumulative - edfAt(fb, p.error));
  return d;
}
