/** The contract between campaigns and the training engine: plain data in, plain data out. */
import type { NetRef, WidthConfig } from '../nets/types.js';
import type { EngineChoice } from './engine-names.js';

export type DatasetName = 'fashion-mnist' | 'cifar10' | 'cifar100' | 'synthetic';

export interface DataSettings {
  name: DatasetName;
  /** Overrides the dataset's default directory. */
  dir?: string;
  /** Fraction of the training split used (low-fidelity search), 0 < subset <= 1. */
  subset?: number;
  /** Fraction of the training set held out for validation (deterministic). */
  valFraction?: number;
  /** Fraction of the test split evaluated (a fixed seeded sample); test error is a side figure in searches. */
  testSubset?: number;
  /** Pad-and-crop and horizontal flip, where they fit the data. */
  augment?: boolean;
  /** Synthetic data only: number of training images (default 1024); shape and classes come from the network. */
  samples?: number;
}

export interface TrainSettings {
  data: DataSettings;
  epochs: number;
  /** Optional step budget; training ends at whichever of epochs or steps comes first. */
  steps?: number;
  batchSize: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  warmupEpochs: number;
  labelSmoothing: number;
  backend: EngineChoice;
  /** Intra-op threads of the torch engine (default 1: one worker per core). */
  threads?: number;
  /**
   * Precise BN: batches of training images (unaugmented, a fixed seeded draw) whose training-mode activations
   * re-estimate the BN running statistics before every evaluation. Absent or 0: the running averages of training.
   */
  preciseBn?: number;
}

/** One candidate to train: the network, its widths, settings and its own seed. */
export interface TrialRequest {
  net: NetRef;
  widths: WidthConfig;
  settings: TrainSettings;
  seed: number;
  /** Where to save the trained model (model.json + weights + metadata), if anywhere. */
  saveDir?: string;
  /** How weights start: the seeded initialisation (default), or inherited from a saved parent at given kept channels. */
  init?: TrialInit;
  /** Train one rung of a multi-fidelity run instead of the whole run (see RungSegment). */
  rung?: RungSegment;
  /**
   * A whole run that stands in for every rung of a rung campaign (a reference seed or a finalist): also evaluate at
   * each lower rung's stop step (rungStopSteps), so its seeds measure seed noise at rung 0 too. Training is unchanged.
   */
  evalRungs?: { rungs: number; eta: number };
}

/** A whole run's errors at a lower rung's stop step (evalRungs): what a candidate stopped there would have had. */
export interface LowerRungResult {
  rung: number;
  /** Epochs trained from the start of the run at that step (fractional mid-epoch). */
  epochs: number;
  valError: number;
  testError: number;
  trainLoss: number;
  /** Training images since the rung below stopped (this rung's increment, as a candidate's rung result counts it). */
  images: number;
}

/**
 * One rung of a run whose settings give the final budget: rung r trains steps [stop(r-1), stop(r)) of it
 * (rungStopSteps), resuming from the checkpoint rung r-1 left in `checkpoints`, and leaves its own there unless it is
 * the top rung.
 */
export interface RungSegment {
  rung: number;
  rungs: number;
  eta: number;
  /** Directory of this trial's checkpoints (one subdirectory per rung). */
  checkpoints: string;
}

/** Inheritance travels as data: the parent's directory, the criterion that chose the channels, and the channels. */
export type TrialInit =
  | { mode: 'scratch' }
  | { mode: 'inherit'; parent: string; criterion: string; kept: number[][] }
  /**
   * Label-free (`search --train distill --parent DIR`): the saved parent is distilled towards the trial's widths (the
   * sampled configuration is the sparsity target). Run by src/pruning/distill/trial.ts: training never imports
   * pruning, so executors dispatch on this mode.
   */
  | { mode: 'distill'; parent: string; students?: number; options?: DistillTrialOptions; rankOn?: RankOn };

/** A label-free trial's distillation settings, named as `distill`'s flags; absent ones take distill's defaults. */
export interface DistillTrialOptions {
  lambdaLogits?: number;
  lambdaFeatures?: number;
  lambdaMutual?: number;
  lambdaSparsity?: number | 'auto';
  temperature?: number;
  reselectEvery?: number;
  sensitivityBatches?: number;
  bnBatches?: number;
}

/**
 * What a label-free campaign's trials report as their validation error, the value the population is ranked,
 * analysed and refined on: 'agreement' (default: the share of validation images whose class differs from the
 * teacher's, no label read), 'distill-loss' (the T²-scaled KL to the teacher), or 'labels' (labelled error).
 */
export type RankOn = 'agreement' | 'distill-loss' | 'labels';
export const RANK_ON: readonly RankOn[] = ['agreement', 'distill-loss', 'labels'];

/** Side metrics of a trial beyond its ranked validation error (label-free trials: the other metrics and the real widths). */
export interface TrialMetrics {
  /** Which metric `valError` holds. */
  rankedOn?: RankOn;
  /** Labelled validation error, where valError holds a label-free metric. */
  valErrorLabelled?: number;
  /** Share of validation images whose predicted class differs from the teacher's. */
  valDisagreement?: number;
  /** T²-scaled KL from the teacher over the validation split. */
  valDistill?: number;
  /** The widths the trained subnetwork really has (a label-free trial's may differ from the sampled target). */
  widths?: WidthConfig;
}

export interface EpochCurve {
  epoch: number;
  trainLoss: number;
  trainError: number;
  valLoss: number;
  valError: number;
  lr: number;
  seconds: number;
  /** Epochs trained when this curve's validation ran, where that is not the epoch's end (a rung stopped mid-epoch). */
  epochs?: number;
  /** Within-epoch training points (src/training/curve-points.ts), so one-epoch trials still have a curve. */
  points?: CurvePoint[];
}

/** Mean training loss and error over a stretch of steps ending at `epoch` (fractional: 0.25 is a quarter of epoch 1). */
export interface CurvePoint {
  epoch: number;
  trainLoss: number;
  trainError: number;
}

export interface TrialResult {
  status: 'complete' | 'failed';
  /** Set when status is 'failed': why (NaN loss, out of memory, crash). */
  error?: string;
  valError?: number;
  testError?: number;
  trainLoss?: number;
  valLoss?: number;
  testLoss?: number;
  /** Optimizer steps taken (in a rung: the step the run reached). */
  steps?: number;
  /** Training images this result consumed (a rung: its own increment). */
  images?: number;
  /** Epochs trained from the start of the run when it ended (fractional where it ended mid-epoch). */
  epochs?: number;
  curves: EpochCurve[];
  /** Wall time of the whole trial, data loading and model building included. */
  wallSeconds: number;
  /** Training throughput, images per second. */
  imagesPerSecond?: number;
  /** Backend that actually ran: 'torch' | 'tensorflow' | 'wasm' | 'cpu'. */
  backend: string;
  /** The net's memory format, where the engine has a choice (EngineNet.memoryFormat). */
  memoryFormat?: string;
  metrics?: TrialMetrics;
  /** Requested by evalRungs: rungs 0..R-2, in rung order; the result itself is the top rung. */
  lowerRungs?: LowerRungResult[];
}
