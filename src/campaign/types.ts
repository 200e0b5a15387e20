/** Plain records a campaign store holds; analysis reads these and never imports training code. */
import type { NetRef, WidthConfig } from '../nets/types.js';
import type { DistillTrialOptions, EpochCurve, RankOn, TrainSettings, TrialMetrics } from '../training/types.js';
import type { Complexity } from '../complexity/count.js';

/**
 * The store's trial states; store.ts writes down which changes between them are legal. 'paused': a rung campaign's
 * candidate that finished a rung below the top and awaits promotion; 'pruned': one that was not promoted.
 */
export type TrialState = 'waiting' | 'running' | 'complete' | 'failed' | 'pruned' | 'paused';

/**
 * What a trial is for: 'sample', a candidate drawn from the space (the population every statistic is about),
 * 'reference', one seed of the uniformly pruned network at the regime's FLOPs (compared with, never pooled in), or
 * 'finalist', one seed of a top candidate of the last rung retrained from scratch at the final budget as the reference is.
 */
export type TrialRole = 'sample' | 'reference' | 'finalist';
export const TRIAL_ROLES: readonly TrialRole[] = ['sample', 'reference', 'finalist'];

/** What one rung of training gave a trial (flat campaigns: one, rung 0). */
export interface RungResult {
  rung: number;
  /** Epochs trained when the rung ended, counted from the start of the run (fractional where a rung ends mid-epoch). */
  epochs: number;
  valError: number;
  testError: number | null;
  trainLoss: number | null;
  /** Training images this rung's increment consumed (0 in stores written before rungs were counted). */
  images: number;
}

/** Multi-fidelity settings of a campaign (successive halving), as `search --rungs` or a campaign file's rungs section give them. */
export interface RungsPlan {
  /** Rungs R; the top rung trains at the campaign's epochs (the final budget), rung r at 1/eta^(R-1-r) of it. */
  rungs: number;
  /** Reduction factor: each rung keeps the best ceil(n/eta) candidates of the one below and trains them eta times as long. */
  eta: number;
  /** 'sync': a rung is decided once all of it is in (deterministic); 'async' (ASHA): promote as soon as a trial ranks in the top 1/eta of those done. */
  mode: 'sync' | 'async';
  /** The top F candidates of the last rung, retrained from scratch with finalistSeeds seeds at the final budget (0: none). */
  finalists: number;
  finalistSeeds: number;
}

export interface TrialRecord {
  index: number;
  round: number;
  /** 'sample' for stores written before roles existed. */
  role: TrialRole;
  widths: WidthConfig;
  seed: number;
  complexity: Complexity;
  state: TrialState;
  attempts: number;
  valError: number | null;
  testError: number | null;
  trainLoss: number | null;
  curves: EpochCurve[];
  wallSeconds: number | null;
  /** Training throughput of the last attempt, images per second. */
  imagesPerSecond: number | null;
  /** Backend that actually trained it ('tensorflow' | 'wasm' | 'cpu'). */
  backend: string | null;
  worker: string | null;
  error: string | null;
  /** ISO times of the last attempt's start and end. */
  startedAt: string | null;
  finishedAt: string | null;
  /** Side metrics beyond valError (label-free trials: which metric valError is, the labelled error, real widths). */
  metrics?: TrialMetrics;
  /**
   * The rung the trial is in: the one its latest rung result belongs to, or, once promoted, the one it trains next
   * (0 for flat campaigns and stores before rungs; reference seeds and finalists of a rung campaign: the top rung).
   */
  rung: number;
  /** One entry per rung it finished, in rung order. */
  rungResults: RungResult[];
  /** A finalist: the index of the candidate trial it re-seeds. */
  finalistOf?: number;
  /** Reference seeds and finalists: seed index 0..K-1; finalists and the reference share the seed of each index. */
  seedIndex?: number;
  /** Median batch-1 inference milliseconds on the campaign's latency target, where the campaign measures it. */
  latencyMs?: number;
  /** Latency regimes: the batch-1 milliseconds the campaign's predictor gave it when it was sampled. */
  predictedLatencyMs?: number;
}

/** One sample-train-analyse-refine round: its own space file (copied into the run directory) and sample. */
export interface RoundRecord {
  round: number;
  /** The round's space file, relative to the run directory. */
  spaceFile: string;
  /** The space file's contents. */
  space: unknown;
  samples: number;
  /** Seed the round was sampled with (round 0: the campaign seed, so `prunespace sample` reproduces it). */
  sampleSeed: number;
  /** Rejection sampling: configurations drawn, and the share inside the regime. */
  sampleAttempts: number;
  acceptanceRate: number;
  createdAt: string;
}

/** What a campaign was launched with; stored once per campaign. */
export interface CampaignConfig {
  name: string;
  /** The space file's contents (a copy, so the campaign survives edits to the file). */
  space: unknown;
  spacePath: string;
  net: NetRef;
  settings: TrainSettings;
  samples: number;
  seed: number;
  createdAt: string;
  versions: Record<string, string>;
  backend: string;
  /** Channel group names in width-configuration order (CSV columns, reports). */
  groups: string[];
  /** Default retry budget for failed trials; `resume --max-attempts` overrides it. */
  maxAttempts: number;
  /** Save every trained subnetwork as a tfjs model in models/trial-<index>/ of the run directory. */
  saveModels?: boolean;
  /** Sample-train-analyse-refine rounds `search --rounds` asked for (1 when absent); `resume` continues them. */
  rounds?: number;
  /** Candidates per refined round (default: samples). */
  roundSamples?: number;
  /** The uniform reference trials of round 0; absent in campaigns created before them (none). */
  reference?: ReferencePlan;
  /** How each trial's weights start (absent in campaigns stored before init modes: scratch). */
  init?: CampaignInit;
  /** Multi-fidelity rungs and finalists; absent: a flat campaign (every candidate at the final budget). */
  rungs?: RungsPlan;
  /** Measure every completed trial's batch-1 latency on this target (`search --measure-latency`). */
  measureLatency?: LatencyTarget;
  /** The latency predictor the candidates were sampled against (spaces with regime.latency): its table file and held-out error. */
  latencyModel?: {
    table: string;
    key: Record<string, unknown>;
    scale: number;
    fitConfigs: number;
    holdout: { n: number; medianRelError: number; maxRelError: number };
  };
}

/** Where trial latency is measured: ONNX Runtime's CPU execution provider, one intra-op thread. */
export type LatencyTarget = 'onnxruntime';

/** The uniformly pruned network a campaign trains beside its candidates, once per seed. */
export interface ReferencePlan {
  /** Seeds asked for (0: no reference). */
  seeds: number;
  /** The keep ratio every channel group got, the widths and their FLOPs; absent when there is no reference trial. */
  keep?: number;
  widths?: WidthConfig;
  flops?: number;
  /** Why seeds were asked for but no reference trial was created (no uniform configuration inside the regime). */
  skipped?: string;
}

/**
 * A campaign's init mode, as plain data. Every parent lives in the run directory's parent/ (a given one is copied
 * there, a missing one is trained there), so `parent` is only where a given parent came from.
 */
export type CampaignInit =
  | { mode: 'scratch' }
  /** Each trial keeps the parent's top channels by `criterion` and fine-tunes from them; no `parent`: trained by the campaign. */
  | { mode: 'inherit'; parent?: string; parentEpochs?: number; criterion: string; combine: 'sum' | 'mean' | 'max'; scoring?: ParentScoring }
  /** Each trial distils the parent towards its widths without labels; `options` as distill's flags, `rankOn` what valError holds. */
  | { mode: 'distill'; parent: string; students: number; options?: DistillTrialOptions; rankOn?: RankOn };

/** How an inheriting campaign scores its parent once, as `prune`'s flags; absent fields take prune's defaults. */
export interface ParentScoring {
  scoreBatches?: number;
  temperature?: number;
  bnTrain?: boolean;
}
