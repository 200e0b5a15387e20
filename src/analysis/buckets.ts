/**
 * The FLOPs-to-parameter-bucket ratio (He et al., network pruning spaces): inside a regime, bucket the
 * trials by parameter count; each bucket has a FLOPs/params ratio; error per bucket, and a curve of
 * error against log ratio, locate the optimal ratio. Where the data cannot support an optimum, the
 * analysis says why instead of reporting one.
 */
import * as ss from 'simple-statistics';
import { bootstrap, percentileInterval, type Interval } from './bootstrap.js';
import { edf, summarize, type EdfPoint, type ErrorSummary } from './edf.js';
import { evalQuadratic, fitQuadratic, vertex, type Quadratic } from './fit.js';
import type { Observation } from './population.js';

export interface ParamBucket {
  index: number;
  /** Parameter range of the bucket's trials (inclusive). */
  paramsLo: number;
  paramsHi: number;
  n: number;
  meanFlops: number;
  meanParams: number;
  /** The bucket's FLOPs-to-parameter ratio: mean FLOPs over mean params of its trials. */
  ratio: number;
  error: ErrorSummary;
  edf: EdfPoint[];
}

export interface BucketOptimum {
  bucket: number;
  ratio: number;
  meanError: number;
  /** Bootstrap 95% interval of the error-minimising bucket's ratio. */
  ratioInterval: Interval;
  /** Share of resamples in which this bucket minimises mean error. */
  share: number;
  /** Parameter window spanned by the buckets chosen in the central 95% of resamples. */
  paramsWindow: [number, number];
  /** First or last bucket: the true optimum may lie outside the ratios sampled. */
  atEdge: boolean;
}

export interface RatioOptimum {
  ratio: number;
  /**
   * Bootstrap 95% interval of the fitted optimum's ratio over every resample: one without an interior
   * minimum counts at the edge of the sampled ratios where its fitted error is lowest (dropping those
   * would make the interval too narrow).
   */
  interval: Interval;
  /** Share of resamples whose fitted minimum over the sampled ratios lies at an edge (or that could not be fitted). */
  edgeShare: number;
  /** Second derivative of fitted error with respect to ln(ratio): how sharp the optimum is. */
  curvature: number;
  /** Ratios where the fitted error stays within `tolerance` of its minimum. */
  band: [number, number];
  tolerance: number;
  /** Fitted error at the optimum. */
  error: number;
  /** Share of resamples whose fit has a minimum inside the sampled ratios. */
  interiorShare: number;
}

export interface RatioAnalysis {
  n: number;
  buckets: ParamBucket[];
  /** FLOPs/params of the original (unpruned) network, for comparison. */
  originalRatio: number | null;
  bucketOptimum: BucketOptimum | null;
  /** Quadratic fit of error against ln(ratio), for plotting even where no optimum is supported. */
  fit: Quadratic | null;
  curve: { ratio: number; error: number }[];
  /** The supported optimum, or null with `reasons` saying why. */
  optimum: RatioOptimum | null;
  reasons: string[];
}

export interface RatioOptions {
  buckets?: number;
  /** Fewer completed trials than this: no optimum is claimed. */
  minTrials?: number;
  /** Resamples for the intervals. */
  samples?: number;
  seed?: number | string;
  /** Required share of resamples with an interior minimum. */
  minInteriorShare?: number;
  /** Minimum rise of fitted error from the optimum to the farther edge of the sampled ratios. */
  minEffect?: number;
  /** Error tolerance that defines the band around the optimum. */
  tolerance?: number;
  originalRatio?: number;
}

export const RATIO_DEFAULTS = { minTrials: 24, samples: 1000, minInteriorShare: 0.9, minEffect: 0.002, tolerance: 0.005 };

/** About 8 trials per bucket, between 3 and 10 buckets. */
export function defaultBucketCount(n: number): number {
  return Math.max(3, Math.min(10, Math.floor(n / 8)));
}

/** Equal-count buckets by parameter count: every bucket's error statistics rest on as many trials. */
export function bucketOf(obs: readonly Observation[], count: number): number[] {
  const order = obs.map((_, i) => i).sort((a, b) => obs[a].params - obs[b].params || obs[a].index - obs[b].index);
  const assign = new Array<number>(obs.length);
  const k = Math.max(1, Math.min(count, obs.length));
  order.forEach((i, rank) => (assign[i] = Math.min(k - 1, Math.floor((rank * k) / obs.length))));
  // Trials with equal params share a bucket, so edges never split a tie.
  for (let r = 1; r < order.length; r++) {
    if (obs[order[r]].params === obs[order[r - 1]].params) assign[order[r]] = assign[order[r - 1]];
  }
  // Ties can empty a bucket; renumber so bucket ids stay dense.
  const used = [...new Set(assign)].sort((a, b) => a - b);
  return assign.map((b) => used.indexOf(b));
}

function describeBuckets(obs: readonly Observation[], assign: readonly number[]): ParamBucket[] {
  const count = assign.length ? Math.max(...assign) + 1 : 0;
  const out: ParamBucket[] = [];
  for (let b = 0; b < count; b++) {
    const members = obs.filter((_, i) => assign[i] === b);
    if (!members.length) continue;
    const meanFlops = ss.mean(members.map((o) => o.flops));
    const meanParams = ss.mean(members.map((o) => o.params));
    const errors = members.map((o) => o.error);
    out.push({
      index: out.length,
      paramsLo: ss.min(members.map((o) => o.params)),
      paramsHi: ss.max(members.map((o) => o.params)),
      n: members.length,
      meanFlops,
      meanParams,
      ratio: meanFlops / meanParams,
      error: summarize(errors),
      edf: edf(errors),
    });
  }
  return out;
}

/** Index of the bucket with the lowest mean error among the given trial indices. */
function argminBucket(indices: readonly number[], assign: readonly number[], errors: readonly number[], count: number): number | null {
  const sum = new Array<number>(count).fill(0);
  const n = new Array<number>(count).fill(0);
  for (const i of indices) {
    sum[assign[i]] += errors[i];
    n[assign[i]]++;
  }
  let bestB: number | null = null;
  for (let b = 0; b < count; b++) {
    if (n[b] && (bestB === null || sum[b] / n[b] < sum[bestB] / n[bestB])) bestB = b;
  }
  return bestB;
}

/** Weights under which every bucket counts equally in the fit (the normalisation of the EDFs). */
function bucketWeights(assign: readonly number[], indices: readonly number[]): number[] {
  const counts = new Map<number, number>();
  for (const i of indices) counts.set(assign[i], (counts.get(assign[i]) ?? 0) + 1);
  return indices.map((i) => 1 / (counts.get(assign[i]) as number));
}

export function analyseRatio(obs: readonly Observation[], options: RatioOptions = {}): RatioAnalysis {
  const opts = { ...RATIO_DEFAULTS, ...options };
  const n = obs.length;
  const originalRatio = options.originalRatio ?? null;
  const empty: RatioAnalysis = { n, buckets: [], originalRatio, bucketOptimum: null, fit: null, curve: [], optimum: null, reasons: [] };
  if (n < 3) return { ...empty, reasons: [`too few completed trials (${n}) to bucket by parameters`] };

  const assign = bucketOf(obs, options.buckets ?? defaultBucketCount(n));
  const buckets = describeBuckets(obs, assign);
  const count = buckets.length;
  const errors = obs.map((o) => o.error);
  const xs = obs.map((o) => Math.log(o.ratio));
  const all = obs.map((_, i) => i);
  const reasons: string[] = [];

  let bucketOptimum: BucketOptimum | null = null;
  if (count >= 2) {
    const best = argminBucket(all, assign, errors, count) as number;
    const boot = bootstrap(n, (idx) => argminBucket(idx, assign, errors, count), { samples: opts.samples, seed: opts.seed, stream: 'ratio/bucket' });
    const chosen = boot.values;
    const sortedChosen = [...chosen].sort((a, b) => a - b);
    const loB = ss.quantileSorted(sortedChosen, 0.025);
    const hiB = ss.quantileSorted(sortedChosen, 0.975);
    bucketOptimum = {
      bucket: best,
      ratio: buckets[best].ratio,
      meanError: buckets[best].error.mean as number,
      ratioInterval: percentileInterval(chosen.map((b) => buckets[b].ratio)) as Interval,
      share: chosen.filter((b) => b === best).length / chosen.length,
      paramsWindow: [buckets[Math.floor(loB)].paramsLo, buckets[Math.ceil(hiB)].paramsHi],
      atEdge: best === 0 || best === count - 1,
    };
  }

  const fit = fitQuadratic(xs, errors, bucketWeights(assign, all));
  const xmin = ss.min(xs);
  const xmax = ss.max(xs);
  const curve = fit
    ? Array.from({ length: 41 }, (_, i) => {
        const x = xmin + ((xmax - xmin) * i) / 40;
        return { ratio: Math.exp(x), error: evalQuadratic(fit, x) };
      })
    : [];
  const base = { n, buckets, originalRatio, bucketOptimum, fit, curve };

  if (n < opts.minTrials) reasons.push(`too few completed trials (${n} < ${opts.minTrials}) to locate an optimal ratio`);
  if (count < 3) reasons.push(`only ${count} parameter bucket(s); an optimum needs at least 3`);
  if (xmax - xmin < 0.02) reasons.push(`the trials' FLOPs/param ratios span too narrow a range (${Math.exp(xmin).toFixed(1)}..${Math.exp(xmax).toFixed(1)})`);
  if (!fit) reasons.push('error against log ratio could not be fitted');
  if (reasons.length || !fit) return { ...base, optimum: null, reasons };

  // An interior minimum keeps away from the outer 5% of the sampled ratios on either side.
  const margin = 0.05 * (xmax - xmin);
  const interior = (q: Quadratic | null): number | null => {
    if (!q || q.c <= 0) return null;
    const v = vertex(q) as number;
    return v > xmin + margin && v < xmax - margin ? v : null;
  };
  const xStar = interior(fit);
  if (fit.c <= 0) reasons.push('error does not curve upward around any ratio (the fitted curve has no minimum)');
  else if (xStar === null) {
    const v = vertex(fit) as number;
    reasons.push(`the fitted minimum (ratio ${Math.exp(v).toFixed(1)}) lies at or beyond the edge of the sampled ratios (${Math.exp(xmin).toFixed(1)}..${Math.exp(xmax).toFixed(1)})`);
  }
  // Each resample's minimiser of the fitted curve over the sampled ratios: its vertex where interior, else the lower edge.
  const boot = bootstrap(
    n,
    (idx) => {
      const q = fitQuadratic(idx.map((i) => xs[i]), idx.map((i) => errors[i]), bucketWeights(assign, idx));
      if (!q) return null;
      const v = interior(q);
      if (v !== null) return { x: v, interior: true };
      return { x: evalQuadratic(q, xmin) <= evalQuadratic(q, xmax) ? xmin : xmax, interior: false };
    },
    { samples: opts.samples, seed: opts.seed, stream: 'ratio/fit' },
  );
  const interiorShare = boot.values.filter((v) => v.interior).length / opts.samples;
  if (interiorShare < opts.minInteriorShare) {
    reasons.push(`the optimum is not stable: only ${(100 * interiorShare).toFixed(0)}% of bootstrap resamples show an interior minimum (need ${(100 * opts.minInteriorShare).toFixed(0)}%)`);
  }
  if (xStar !== null) {
    const rise = Math.max(evalQuadratic(fit, xmin), evalQuadratic(fit, xmax)) - evalQuadratic(fit, xStar);
    if (rise < opts.minEffect) reasons.push(`the curve is flat: fitted error varies by ${(100 * rise).toFixed(2)} points across the sampled ratios (need ${(100 * opts.minEffect).toFixed(2)})`);
  }
  if (reasons.length || xStar === null) return { ...base, optimum: null, reasons };

  const half = Math.sqrt(opts.tolerance / fit.c);
  // A resample that could not be fitted says nothing about where the optimum is: it counts at both edges, half each.
  const unfitted = boot.undefinedCount;
  const located = [...boot.values.map((v) => v.x), ...Array.from({ length: unfitted }, (_, i) => (i % 2 ? xmax : xmin))];
  const interval = percentileInterval(located.map(Math.exp)) as Interval;
  return {
    ...base,
    optimum: {
      ratio: Math.exp(xStar),
      interval,
      curvature: 2 * fit.c,
      band: [Math.exp(xStar - half), Math.exp(xStar + half)],
      tolerance: opts.tolerance,
      error: evalQuadratic(fit, xStar),
      interiorShare,
      edgeShare: 1 - interiorShare,
    },
    reasons,
  };
}
