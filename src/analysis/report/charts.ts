/** The report's plots as Vega-Lite specs, each with the rows behind it (written as CSV beside the report). */
import type { CampaignAnalysis } from '../analyse.js';
import type { ComparedPopulation } from '../compare.js';
import type { LatencyFit } from '../latency.js';
import type { ChartSpec } from './vega.js';

export type Row = Record<string, string | number | null>;

export interface PlotData {
  /** CSV file name (without folder) and its rows. */
  file: string;
  rows: Row[];
}

export interface Plot {
  id: string;
  title: string;
  /** Why the plot is absent (too few trials, no curves); plots with a reason have no spec. */
  missing?: string;
  spec?: ChartSpec;
  data: PlotData[];
}

const W = 560;
const H = 300;
const q = (field: string, title: string, extra: Record<string, unknown> = {}) => ({ field, type: 'quantitative' as const, title, ...extra });

/** EDF overlay of campaigns or rounds, plain and normalised by parameter bins. */
export function edfPlot(pops: readonly ComparedPopulation[]): Plot {
  const rows: Row[] = [];
  for (const p of pops) {
    for (const pt of p.edf) rows.push({ population: p.label, kind: 'plain', error: pt.error, cumulative: pt.cumulative });
    for (const pt of p.normalizedEdf) rows.push({ population: p.label, kind: 'params-normalised', error: pt.error, cumulative: pt.cumulative });
  }
  const data = [{ file: 'edf.csv', rows }];
  if (!rows.length) return { id: 'edf', title: 'Error EDFs', missing: 'no completed trials', data };
  return {
    id: 'edf', title: 'Error EDFs', data,
    spec: {
      width: W, height: H, data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.8 },
      encoding: {
        x: q('error', 'validation error', { scale: { zero: false } }),
        y: q('cumulative', 'share of trials with error ≤ x', { scale: { domain: [0, 1] } }),
        color: { field: 'population', type: 'nominal', title: 'population' },
        strokeDash: { field: 'kind', type: 'nominal', title: 'EDF' },
      },
    },
  };
}

/** Error against FLOPs/param ratio: trials, parameter buckets, the fitted curve, the optimum and the original network. */
export function ratioPlot(a: CampaignAnalysis): Plot {
  const r = a.ratio;
  const trials: Row[] = a.obs.map((o) => ({ index: o.index, round: o.round, ratio: o.ratio, error: o.error, flops: o.flops, params: o.params }));
  const buckets: Row[] = r.buckets.map((b) => ({
    bucket: b.index + 1, params_lo: b.paramsLo, params_hi: b.paramsHi, n: b.n, ratio: b.ratio,
    mean_error: b.error.mean, min_error: b.error.min, p25: b.error.quantiles?.p25 ?? null, p75: b.error.quantiles?.p75 ?? null,
  }));
  const fit: Row[] = r.curve.map((c) => ({ ratio: c.ratio, fitted_error: c.error }));
  const marks: Row[] = [{ what: 'original network', ratio: r.originalRatio, lo: null, hi: null }];
  if (r.optimum) marks.push({ what: 'fitted optimum (95% interval)', ratio: r.optimum.ratio, lo: r.optimum.interval.lo, hi: r.optimum.interval.hi });
  if (r.bucketOptimum) marks.push({ what: 'best bucket (95% interval)', ratio: r.bucketOptimum.ratio, lo: r.bucketOptimum.ratioInterval.lo, hi: r.bucketOptimum.ratioInterval.hi });
  const data = [
    { file: 'ratio-trials.csv', rows: trials },
    { file: 'ratio-buckets.csv', rows: buckets },
    { file: 'ratio-fit.csv', rows: fit },
    { file: 'ratio-optimum.csv', rows: marks },
  ];
  const title = 'Error against FLOPs per parameter';
  if (a.obs.length < 3) return { id: 'ratio', title, missing: `too few completed trials (${a.obs.length}) to bucket by parameters`, data };
  // A log axis spans the data (and the marked ratios), not the decade Vega would round out to.
  const spanned = [...a.obs.map((o) => o.ratio), ...marks.flatMap((m) => [m.ratio, m.lo, m.hi]).filter((v): v is number => typeof v === 'number')];
  const domain = [Math.min(...spanned) / 1.08, Math.max(...spanned) * 1.08];
  const x = q('ratio', 'FLOPs per parameter (log scale)', { scale: { type: 'log', domain, nice: false } });
  const y = { field: 'error', type: 'quantitative' as const, title: 'validation error', scale: { zero: false } };
  const intervals = marks.filter((m) => m.lo !== null);
  const layers: Record<string, unknown>[] = [];
  if (intervals.length) {
    layers.push({ data: { values: intervals }, mark: { type: 'rect', opacity: 0.12 }, encoding: { x: { ...x, field: 'lo' }, x2: { field: 'hi' }, color: { field: 'what', type: 'nominal', title: '' } } });
  }
  layers.push(
    { data: { values: trials }, mark: { type: 'circle', size: 22, opacity: 0.45, color: '#888' }, encoding: { x, y } },
    {
      data: { values: buckets }, mark: { type: 'rule', color: '#e45756' },
      encoding: { x, y: { field: 'p25', type: 'quantitative', title: 'validation error' }, y2: { field: 'p75' } },
    },
    { data: { values: buckets }, mark: { type: 'point', filled: true, size: 70, color: '#e45756', shape: 'diamond' }, encoding: { x, y: { ...y, field: 'mean_error' }, tooltip: [{ field: 'n' }] } },
  );
  if (fit.length) layers.push({ data: { values: fit }, mark: { type: 'line', color: '#4c78a8' }, encoding: { x, y: { ...y, field: 'fitted_error' } } });
  layers.push({
    data: { values: marks }, mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.5 },
    encoding: { x, color: { field: 'what', type: 'nominal', title: '' } },
  });
  return { id: 'ratio', title, data, spec: { width: W, height: H, layer: layers } as unknown as ChartSpec };
}

/** EDF of each parameter bucket, coloured by its FLOPs/param ratio: which buckets hold the good subnetworks. */
export function bucketEdfPlot(a: CampaignAnalysis): Plot {
  const rows: Row[] = a.ratio.buckets.flatMap((b) =>
    b.edf.map((pt) => ({ bucket: b.index + 1, label: `${b.index + 1}: ratio ${b.ratio.toFixed(1)} (n=${b.n})`, ratio: b.ratio, error: pt.error, cumulative: pt.cumulative })),
  );
  const data = [{ file: 'ratio-bucket-edfs.csv', rows }];
  const title = 'Error EDF per parameter bucket';
  if (a.ratio.buckets.length < 2) return { id: 'bucket-edf', title, missing: `too few completed trials (${a.obs.length}) for parameter buckets`, data };
  return {
    id: 'bucket-edf', title, data,
    spec: {
      width: W, height: H, data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.6 },
      encoding: {
        x: q('error', 'validation error', { scale: { zero: false } }),
        y: q('cumulative', 'share of the bucket with error ≤ x', { scale: { domain: [0, 1] } }),
        color: { field: 'label', type: 'nominal', title: 'parameter bucket', sort: { field: 'bucket' }, scale: { scheme: 'viridis' } },
      },
    },
  };
}

/** Mean keep ratio of every channel group, winners against all trials. */
export function profilePlot(a: CampaignAnalysis): Plot {
  const p = a.profile;
  const rows: Row[] = p.groups.flatMap((g) => [
    { group: g.name, id: g.group, stage: g.stage, kind: g.kind, population: `best ${p.k}`, keep: g.winners },
    { group: g.name, id: g.group, stage: g.stage, kind: g.kind, population: 'all', keep: g.all },
  ]);
  const data = [{ file: 'width-profile.csv', rows }];
  const title = 'Width profile: keep ratio per channel group';
  if (!rows.length) return { id: 'profile', title, missing: 'no completed trials', data };
  return {
    id: 'profile', title, data,
    spec: {
      width: Math.max(W, 26 * p.groups.length), height: H, data: { values: rows },
      mark: 'bar',
      encoding: {
        x: { field: 'group', type: 'nominal', sort: { field: 'id' }, title: 'channel group', axis: { labelAngle: -50 } },
        xOffset: { field: 'population', type: 'nominal' },
        y: q('keep', 'mean keep ratio (width / original)', { scale: { domain: [0, 1] } }),
        color: { field: 'population', type: 'nominal', title: '' },
      },
    },
  };
}

/** Error against FLOPs with the Pareto front. */
export function paretoPlot(a: CampaignAnalysis): Plot {
  const front = new Set(a.pareto.map((o) => o.index));
  const rows: Row[] = a.obs.map((o) => ({ index: o.index, round: o.round, flops: o.flops, params: o.params, error: o.error, pareto: front.has(o.index) ? 1 : 0 }));
  const data = [{ file: 'pareto.csv', rows }];
  const title = 'Error against FLOPs, Pareto front';
  if (!rows.length) return { id: 'pareto', title, missing: 'no completed trials', data };
  const x = q('flops', 'FLOPs (multiply-accumulates)', { scale: { zero: false } });
  const y = q('error', 'validation error', { scale: { zero: false } });
  return {
    id: 'pareto', title, data,
    spec: {
      width: W, height: H,
      layer: [
        { data: { values: rows }, mark: { type: 'circle', size: 22, opacity: 0.45, color: '#888' }, encoding: { x, y } },
        {
          data: { values: rows.filter((r) => r.pareto === 1) }, mark: { type: 'line', point: true, interpolate: 'step-after', color: '#e45756' },
          encoding: { x, y },
        },
      ],
    } as ChartSpec,
  };
}

/** One epoch of a trial's curve as the store keeps it; `points` are within-epoch training points (fractional epochs). */
export interface CurveInput {
  epoch: number;
  /** Where validation ran, if not at the epoch's end (a rung that stopped mid-epoch). */
  epochs?: number;
  valError: number;
  trainError: number;
  points?: { epoch: number; trainError: number }[];
}

/** One trial's curves, for trialCurvesPlot. */
export interface TrialCurves {
  index: number;
  curves: readonly CurveInput[];
}

/**
 * Training curves of the given trials: training error at a few points per epoch (a line, so one-epoch trials still
 * show how they learned) and validation error at each epoch's end (dots). `who` names the trials in the title
 * ('the best 5 trials', 'the running trials'); `id` tells plots of different trial sets apart.
 */
export function trialCurvesPlot(trials: readonly TrialCurves[], who: string, id = 'curves', file = 'curves.csv'): Plot {
  const rows: Row[] = [];
  let longest = 0;
  for (const t of trials) {
    const before = rows.length;
    for (const c of t.curves) {
      const train = c.points?.length ? c.points : [{ epoch: c.epoch, trainError: c.trainError }];
      for (const p of train) rows.push({ trial: `#${t.index}`, index: t.index, epoch: p.epoch, series: 'training', error: p.trainError });
      rows.push({ trial: `#${t.index}`, index: t.index, epoch: c.epochs ?? c.epoch, series: 'validation', error: c.valError });
    }
    longest = Math.max(longest, rows.slice(before).filter((r) => r.series === 'training').length);
  }
  const data = [{ file, rows }];
  const title = `Training curves of ${who}`;
  if (!rows.length) return { id, title, missing: `${who} recorded no per-epoch curves`, data };
  if (longest < 2) {
    return {
      id, title, data,
      missing: `${who} trained a single epoch and recorded no within-epoch points (their campaign predates them), so each curve would be one point; the table of best subnetworks gives their errors`,
    };
  }
  const color = { field: 'trial', type: 'nominal', title: 'trial', sort: { field: 'index' } };
  const x = q('epoch', 'epoch (fractions: training error within the epoch)', { scale: { zero: true } });
  const y = q('error', 'error (line: training, running mean; dot: validation)', { scale: { zero: false } });
  return {
    id, title, data,
    spec: {
      width: W, height: H, data: { values: rows },
      layer: [
        { transform: [{ filter: "datum.series === 'training'" }], mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x, y, color } },
        { transform: [{ filter: "datum.series === 'validation'" }], mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y, color } },
      ],
    } as ChartSpec,
  };
}

/** Training curves of the best trials. */
export function curvesPlot(a: CampaignAnalysis, trialsCurves: Map<number, CurveInput[]>): Plot {
  return trialCurvesPlot(a.winners.map((o) => ({ index: o.index, curves: trialsCurves.get(o.index) ?? [] })), `the best ${a.winners.length} trials`);
}

/** Binned mean error (with one standard deviation) against the main complexity and stage-width metrics. */
export function metricBinsPlot(a: CampaignAnalysis): Plot {
  const keys = new Set(['flops', 'params', 'activations', 'ratio', ...a.metrics.filter((m) => m.key.startsWith('width.')).map((m) => m.key)]);
  const rows: Row[] = a.metrics
    .filter((m) => keys.has(m.key))
    .flatMap((m) => m.bins.filter((b) => b.n > 0).map((b) => ({
      metric: m.label, key: m.key, lo: b.lo, hi: b.hi, center: (b.lo + b.hi) / 2, n: b.n, mean: b.mean, sd: b.sd,
      low: b.sd === null ? b.mean : (b.mean as number) - b.sd, high: b.sd === null ? b.mean : (b.mean as number) + b.sd,
    })));
  const data = [{ file: 'metric-bins.csv', rows }];
  const title = 'Binned error against trial metrics';
  if (a.obs.length < 3) return { id: 'metric-bins', title, missing: `too few completed trials (${a.obs.length})`, data };
  return {
    id: 'metric-bins', title, data,
    spec: {
      data: { values: rows },
      facet: { field: 'metric', type: 'nominal', title: null },
      columns: 4,
      spec: {
        width: 150, height: 120,
        layer: [
          { mark: { type: 'rule', color: '#888' }, encoding: { x: q('center', ''), y: q('low', '', { scale: { zero: false }, title: null }), y2: { field: 'high' } } },
          { mark: { type: 'line', point: true }, encoding: { x: q('center', '', { scale: { zero: false } }), y: q('mean', 'val error, mean ± sd', { scale: { zero: false } }) } },
        ],
      },
      resolve: { scale: { x: 'independent' } },
    } as ChartSpec,
  };
}

/** Measured batch-1 latency against FLOPs, the fitted line, outliers in red (campaigns run with --measure-latency). */
export function latencyPlot(fit: LatencyFit): Plot {
  const rows: Row[] = fit.points.map((p) => ({ index: p.index, flops: p.flops, latency_ms: p.latencyMs, error: p.error, residual_ms: p.residualMs, outlier: p.outlier ? 1 : 0 }));
  const data = [{ file: 'latency.csv', rows }];
  const title = 'Measured latency against FLOPs';
  const x = q('flops', 'FLOPs (multiply-accumulates)', { scale: { zero: false } });
  const y = q('latency_ms', 'batch-1 latency (ms)', { scale: { zero: false } });
  const xs = rows.map((r) => r.flops as number);
  const line = [Math.min(...xs), Math.max(...xs)].map((f) => ({ flops: f, latency_ms: fit.interceptMs + (fit.msPerMflop * f) / 1e6 }));
  return {
    id: 'latency', title, data,
    spec: {
      width: W, height: H,
      layer: [
        { data: { values: rows }, mark: { type: 'circle', size: 26, opacity: 0.6 }, encoding: { x, y, color: { field: 'outlier', type: 'nominal', title: 'outlier', scale: { domain: [0, 1], range: ['#4c78a8', '#e45756'] } } } },
        { data: { values: line }, mark: { type: 'line', color: '#888' }, encoding: { x, y } },
      ],
    } as ChartSpec,
  };
}
