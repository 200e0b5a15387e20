/** Measured latency against FLOPs: a straight-line fit over the completed trials and the trials far off it. */
import * as ss from 'simple-statistics';
import { populationTrials, type TrialLike } from './population.js';

export interface LatencyPoint {
  index: number;
  flops: number;
  latencyMs: number;
  error: number | null;
  /** Measured minus fitted, milliseconds. */
  residualMs: number;
  outlier: boolean;
}

export interface LatencyFit {
  points: LatencyPoint[];
  /** latency ≈ interceptMs + msPerMflop · FLOPs/1e6. */
  interceptMs: number;
  msPerMflop: number;
  r2: number;
}

/** Robust outlier rule: a residual beyond 3 scaled MADs (about 3 standard deviations for normal residuals). */
export const OUTLIER_MADS = 3;

/** Null with fewer than 3 measured trials (no line to speak of). */
export function latencyFit(trials: readonly TrialLike[]): LatencyFit | null {
  const measured = populationTrials(trials).filter((t) => t.state === 'complete' && typeof t.latencyMs === 'number');
  if (measured.length < 3) return null;
  const xy = measured.map((t) => [t.complexity.flops / 1e6, t.latencyMs!]);
  const line = ss.linearRegression(xy);
  const f = ss.linearRegressionLine(line);
  const residuals = xy.map(([x, y]) => y - f(x));
  const med = ss.median(residuals);
  const mad = 1.4826 * ss.median(residuals.map((r) => Math.abs(r - med)));
  return {
    interceptMs: line.b,
    msPerMflop: line.m,
    r2: ss.rSquared(xy, f),
    points: measured.map((t, i) => ({
      index: t.index,
      flops: t.complexity.flops,
      latencyMs: t.latencyMs!,
      error: t.valError,
      residualMs: residuals[i],
      outlier: mad > 0 && Math.abs(residuals[i] - med) > OUTLIER_MADS * mad,
    })),
  };
}
