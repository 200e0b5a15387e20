/** Measured latency against FLOPs: a straight-line fit over the completed trials and the trials far off it. */
import * as ss from 'simple-statistics';
import type { CampaignConfig } from '../campaign/types.js';
import type { LatencyRegime } from '../space/schema.js';
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

export interface PredictionPoint {
  index: number;
  predictedMs: number;
  measuredMs: number;
  /** (predicted - measured) / measured. */
  relError: number;
  outlier: boolean;
}

/** How well the predictor a latency regime sampled against matched the latency measured for its candidates. */
export interface PredictionAccuracy {
  points: PredictionPoint[];
  /** Median and largest |predicted - measured| / measured. */
  medianAbsRelError: number;
  maxAbsRelError: number;
  /** Median signed relative error: above 0 the predictor overstates latency. */
  medianRelError: number;
}

/**
 * Predicted against measured latency over the sampled candidates with both (reference seeds and finalists repeat a
 * configuration); null with none. Outliers: a relative error beyond OUTLIER_MADS scaled MADs of the median one.
 */
export function predictionAccuracy(trials: readonly TrialLike[]): PredictionAccuracy | null {
  const both = populationTrials(trials).filter((t) => typeof t.latencyMs === 'number' && t.latencyMs > 0 && typeof t.predictedLatencyMs === 'number');
  if (!both.length) return null;
  const rel = both.map((t) => (t.predictedLatencyMs! - t.latencyMs!) / t.latencyMs!);
  const med = ss.median(rel);
  const mad = 1.4826 * ss.median(rel.map((r) => Math.abs(r - med)));
  const abs = rel.map(Math.abs);
  return {
    medianAbsRelError: ss.median(abs),
    maxAbsRelError: Math.max(...abs),
    medianRelError: med,
    points: both.map((t, i) => ({
      index: t.index,
      predictedMs: t.predictedLatencyMs!,
      measuredMs: t.latencyMs!,
      relError: rel[i],
      outlier: both.length >= 3 && mad > 0 && Math.abs(rel[i] - med) > OUTLIER_MADS * mad,
    })),
  };
}

/** What a campaign records of its latency predictor. */
export type PredictorRecord = NonNullable<CampaignConfig['latencyModel']>;

/** A latency regime as the campaign stored its space file (batch may be left to its default). */
export type StatedWindow = Omit<LatencyRegime, 'batch'> & { batch?: number };

/** The latency regime of a stored space file, if it states one. */
export function statedWindow(space: unknown): StatedWindow | undefined {
  return (space as { regime?: { latency?: StatedWindow } } | null)?.regime?.latency;
}

const pctText = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * Plain-text lines on a latency regime's predictor (status prints them, the report escapes them): the target and
 * window, the table and its machine key, the scale, its held-out error, and predicted against measured latency.
 */
export function predictorLines(window: StatedWindow, record: PredictorRecord | undefined, accuracy: PredictionAccuracy | null): string[] {
  const { min, max } = window.ms;
  const out = [`latency regime: ${window.target}, batch ${window.batch ?? 1}, predicted ${min ?? 0}–${max ?? 'any'} ms`];
  if (!record) {
    out.push('predictor: not recorded (the campaign predates recording it)');
  } else {
    const key = Object.entries(record.key).map(([k, v]) => `${k} ${String(v)}`).join(', ');
    out.push(`predictor: table ${record.table} (machine key: ${key})`);
    const held = record.holdout
      ? `held-out error on ${record.holdout.n} configuration(s): median ${pctText(record.holdout.medianRelError)}, max ${pctText(record.holdout.maxRelError)}`
      : 'held-out error not recorded';
    out.push(`  latency ≈ ${record.scale.toFixed(3)} x table sum (scale fitted on ${record.fitConfigs} configuration(s)); ${held}`);
  }
  if (!accuracy) {
    out.push('  predicted against measured: no candidate has both yet');
    return out;
  }
  const outliers = accuracy.points.filter((p) => p.outlier);
  out.push(
    `  predicted against measured on ${accuracy.points.length} candidate(s): median |error| ${pctText(accuracy.medianAbsRelError)}, max ${pctText(accuracy.maxAbsRelError)}, ` +
      `median signed ${accuracy.medianRelError >= 0 ? '+' : ''}${pctText(accuracy.medianRelError)} (above 0: the predictor overstates)`,
  );
  out.push(
    `  outliers (relative error beyond ${OUTLIER_MADS} scaled MADs): ` +
      (outliers.map((p) => `trial ${p.index} (predicted ${p.predictedMs.toFixed(3)} ms, measured ${p.measuredMs.toFixed(3)} ms)`).join(', ') || 'none'),
  );
  return out;
}
