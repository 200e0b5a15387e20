/** Trial metrics that error is analysed against: complexity, FLOPs/param ratio, keep ratio per group, width per stage. */
import * as ss from 'simple-statistics';
import type { ChannelGroup } from '../nets/types.js';
import { goodRange, type BootstrapOptions, type Interval } from './bootstrap.js';
import type { Observation } from './population.js';

export interface TrialMetric {
  /** Stable key, used in CSV columns and provenance: 'flops', 'ratio', 'keep.stage2', 'width.stage3'. */
  key: string;
  label: string;
  /** Plot and bin on a log scale (complexity spans orders of magnitude). */
  log: boolean;
  /** The group this metric belongs to, for keep ratios. */
  group?: number;
  stage?: number;
  value: (o: Observation) => number;
}

/** Every metric for a network with these channel groups. */
export function trialMetrics(groups: readonly ChannelGroup[]): TrialMetric[] {
  const metrics: TrialMetric[] = [
    { key: 'flops', label: 'FLOPs (MACs)', log: true, value: (o) => o.flops },
    { key: 'params', label: 'parameters', log: true, value: (o) => o.params },
    { key: 'activations', label: 'activations', log: true, value: (o) => o.activations },
    { key: 'ratio', label: 'FLOPs per parameter', log: true, value: (o) => o.ratio },
  ];
  for (const g of groups) {
    metrics.push({ key: `keep.${g.name}`, label: `keep ratio of ${g.name}`, log: false, group: g.id, stage: g.stage, value: (o) => o.widths[g.id] / g.base });
  }
  for (const stage of [...new Set(groups.map((g) => g.stage))].sort((a, b) => a - b)) {
    const ids = groups.filter((g) => g.stage === stage).map((g) => g.id);
    // The channels a stage keeps in total: where a budget goes, stage by stage.
    metrics.push({ key: `width.stage${stage}`, label: `channels kept in stage ${stage}`, log: false, stage, value: (o) => ids.reduce((s, i) => s + o.widths[i], 0) });
  }
  return metrics;
}

export interface ErrorBin {
  lo: number;
  hi: number;
  n: number;
  mean: number | null;
  /** Sample standard deviation of error in the bin (null below 2 trials). */
  sd: number | null;
  min: number | null;
}

/** Error binned along a metric into equal-width bins (in log space where `log`). */
export function binnedError(values: readonly number[], errors: readonly number[], bins: number, log: boolean): ErrorBin[] {
  if (!values.length) return [];
  const t = (v: number) => (log ? Math.log(v) : v);
  const inv = (v: number) => (log ? Math.exp(v) : v);
  const xs = values.map(t);
  const lo = ss.min(xs);
  const hi = ss.max(xs);
  const count = hi === lo ? 1 : bins;
  const width = (hi - lo) / count;
  const members: number[][] = Array.from({ length: count }, () => []);
  xs.forEach((x, i) => members[width === 0 ? 0 : Math.min(count - 1, Math.floor((x - lo) / width))].push(errors[i]));
  return members.map((e, b) => ({
    lo: inv(lo + b * width),
    hi: inv(lo + (b + 1) * width),
    n: e.length,
    mean: e.length ? ss.mean(e) : null,
    sd: e.length > 1 ? ss.sampleStandardDeviation(e) : null,
    min: e.length ? ss.min(e) : null,
  }));
}

export interface MetricAnalysis {
  key: string;
  label: string;
  /** Where the best trial's metric lies, by pycls bootstrap (null without trials). */
  goodRange: Interval | null;
  /** Metric range over all trials, for judging how much the good range narrows it. */
  extent: [number, number] | null;
  /** Spearman rank correlation of metric and error (null when undefined). */
  rankCorrelation: number | null;
  bins: ErrorBin[];
}

export function analyseMetric(obs: readonly Observation[], metric: TrialMetric, options: BootstrapOptions & { bins?: number } = {}): MetricAnalysis {
  const values = obs.map(metric.value);
  const errors = obs.map((o) => o.error);
  let rankCorrelation: number | null = null;
  if (values.length > 2 && new Set(values).size > 1 && new Set(errors).size > 1) {
    rankCorrelation = ss.sampleRankCorrelation(values, errors);
    if (!Number.isFinite(rankCorrelation)) rankCorrelation = null;
  }
  return {
    key: metric.key,
    label: metric.label,
    goodRange: goodRange(values, errors, { ...options, stream: metric.key }),
    extent: values.length ? [ss.min(values), ss.max(values)] : null,
    rankCorrelation,
    bins: binnedError(values, errors, options.bins ?? 8, metric.log),
  };
}
