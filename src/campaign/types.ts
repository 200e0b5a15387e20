/** Plain records a campaign store holds; analysis reads these and never imports training code. */
import type { NetRef, WidthConfig } from '../nets/types.js';
import type { EpochCurve, TrainSettings } from '../training/types.js';
import type { Complexity } from '../complexity/count.js';

/** The store's trial states; store.ts writes down which changes between them are legal. */
export type TrialState = 'waiting' | 'running' | 'complete' | 'failed' | 'pruned';

/**
 * What a trial is for: 'sample', a candidate drawn from the space (the population every statistic is about), or
 * 'reference', one seed of the uniformly pruned network at the regime's FLOPs (compared with, never pooled in).
 */
export type TrialRole = 'sample' | 'reference';
export const TRIAL_ROLES: readonly TrialRole[] = ['sample', 'reference'];

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
  /** Median batch-1 inference milliseconds on the campaign's latency target, where the campaign measures it. */
  latencyMs?: number;
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
  /** Measure every completed trial's batch-1 latency on this target (`search --measure-latency`). */
  measureLatency?: LatencyTarget;
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
  | { mode: 'inherit'; parent?: string; parentEpochs?: number; criterion: string; combine: 'sum' | 'mean' | 'max' }
  /** Each trial distils the parent towards its widths without labels. */
  | { mode: 'distill'; parent: string; students: number };
