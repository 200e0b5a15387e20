/** One campaign's whole analysis as plain data: the report draws it, refinement reasons from it. */
import { complexity, type Complexity } from '../complexity/count.js';
import { buildNet } from '../nets/registry.js';
import { baseWidths } from '../nets/resolve.js';
import type { NetRef, NetSpec } from '../nets/types.js';
import { analyseRatio, type RatioAnalysis, type RatioOptions } from './buckets.js';
import { summarize, type ErrorSummary } from './edf.js';
import { analyseMetric, trialMetrics, type MetricAnalysis } from './metrics.js';
import { paretoFront } from './pareto.js';
import { best, defaultTopK, observations, populationTrials, type Observation, type TrialLike } from './population.js';
import { widthProfile, type WidthProfile } from './profiles.js';

export interface AnalysisInput {
  name: string;
  net: NetRef;
  trials: readonly TrialLike[];
  /** Seeds every bootstrap, so a report is reproducible. */
  seed?: number;
}

export interface AnalysisOptions {
  topK?: number;
  ratio?: RatioOptions;
  /** Rounds to include (all when absent). */
  rounds?: number[];
  /**
   * The rung whose errors the population statistics use (default 0, where every candidate has one); above it, only
   * the candidates promoted that far, chosen on the rung below.
   */
  rung?: number;
}

export interface CampaignAnalysis {
  name: string;
  spec: NetSpec;
  /** The rung whose errors `obs` holds. */
  rung: number;
  trialsTotal: number;
  failed: number;
  pending: number;
  obs: Observation[];
  summary: ErrorSummary;
  topK: number;
  winners: Observation[];
  metrics: MetricAnalysis[];
  ratio: RatioAnalysis;
  profile: WidthProfile;
  pareto: Observation[];
  originalRatio: number;
  /** The unpruned network's complexity. */
  original: Complexity;
}

export function analyseCampaign(input: AnalysisInput, options: AnalysisOptions = {}): CampaignAnalysis {
  const spec = buildNet(input.net);
  // The population only: the uniform reference's seeds are compared with it (reference.ts), never counted in it.
  const sampled = populationTrials(input.trials);
  const trials = options.rounds ? sampled.filter((t) => options.rounds?.includes(t.round)) : sampled;
  const rung = options.rung ?? 0;
  const obs = observations(trials, rung);
  const topK = Math.min(obs.length, options.topK ?? defaultTopK(obs.length));
  const winners = best(obs, topK);
  const original = complexity(spec, baseWidths(spec));
  const originalRatio = original.flops / original.params;
  const seed = input.seed ?? 0;
  return {
    name: input.name,
    spec,
    rung,
    trialsTotal: trials.length,
    failed: trials.filter((t) => t.state === 'failed').length,
    pending: trials.filter((t) => t.state === 'waiting' || t.state === 'running').length,
    obs,
    summary: summarize(obs.map((o) => o.error)),
    topK,
    winners,
    metrics: obs.length ? trialMetrics(spec.groups).map((m) => analyseMetric(obs, m, { seed })) : [],
    ratio: analyseRatio(obs, { seed, originalRatio, ...options.ratio }),
    profile: widthProfile(obs, winners, spec.groups),
    pareto: paretoFront(obs),
    originalRatio,
    original,
  };
}
