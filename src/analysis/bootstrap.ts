/** Seeded bootstrap: pycls-style good ranges of the best trial, and percentile intervals. */
import * as ss from 'simple-statistics';
import { makeRng, type Rng } from '../util/rng.js';

export interface Interval {
  /** 2.5th percentile. */
  lo: number;
  /** Median. */
  mid: number;
  /** 97.5th percentile. */
  hi: number;
}

export interface BootstrapOptions {
  /** Number of resamples; the good range uses at least 2500. */
  samples?: number;
  /** Resample size as a share of the trials (pycls uses 25%). */
  fraction?: number;
  seed?: number | string;
  /** Stream label so that different statistics draw independent resamples from one seed. */
  stream?: string;
}

export const GOOD_RANGE_SAMPLES = 2500;

export function percentileInterval(values: readonly number[]): Interval | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    lo: ss.quantileSorted(sorted, 0.025),
    mid: ss.quantileSorted(sorted, 0.5),
    hi: ss.quantileSorted(sorted, 0.975),
  };
}

/** m indices drawn with replacement from 0..n-1. */
export function resampleIndices(rng: Rng, n: number, m: number): number[] {
  const out = new Array<number>(m);
  for (let i = 0; i < m; i++) out[i] = Math.floor(rng() * n);
  return out;
}

/**
 * The good range of a metric: draw many subsamples of `fraction` of the trials with replacement,
 * take each subsample's best (lowest-error) trial, and report the 2.5/50/97.5 percentiles of its
 * metric. Where the winners' metric concentrates, the range is narrow.
 */
export function goodRange(values: readonly number[], errors: readonly number[], options: BootstrapOptions = {}): Interval | null {
  const n = values.length;
  if (n !== errors.length) throw new Error('goodRange: one error per value');
  if (n === 0) return null;
  const samples = Math.max(GOOD_RANGE_SAMPLES, options.samples ?? GOOD_RANGE_SAMPLES);
  const m = Math.max(1, Math.round((options.fraction ?? 0.25) * n));
  const rng = makeRng(options.seed ?? 0, `good-range/${options.stream ?? ''}`);
  const picks = new Array<number>(samples);
  for (let s = 0; s < samples; s++) {
    let bestI = -1;
    for (let j = 0; j < m; j++) {
      const i = Math.floor(rng() * n);
      if (bestI < 0 || errors[i] < errors[bestI] || (errors[i] === errors[bestI] && i < bestI)) bestI = i;
    }
    picks[s] = values[bestI];
  }
  return percentileInterval(picks);
}

/**
 * Full-size resamples with replacement; `statistic` sees each resample's indices and may return null
 * when the statistic is undefined on that resample (those are counted, not averaged).
 */
export function bootstrap<T>(n: number, statistic: (indices: number[]) => T | null, options: BootstrapOptions = {}): { values: T[]; undefinedCount: number } {
  const samples = options.samples ?? 1000;
  const rng = makeRng(options.seed ?? 0, `bootstrap/${options.stream ?? ''}`);
  const m = Math.max(1, Math.round((options.fraction ?? 1) * n));
  const values: T[] = [];
  let undefinedCount = 0;
  for (let s = 0; s < samples; s++) {
    const v = statistic(resampleIndices(rng, n, m));
    if (v === null) undefinedCount++;
    else values.push(v);
  }
  return { values, undefinedCount };
}
