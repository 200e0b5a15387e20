/** The training flags `train` and `search` share, and the one way they become TrainSettings. */
import { Option, type Command } from 'commander';
import { DATASETS } from '../training/data/load.js';
import type { DatasetName, TrainSettings } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { intFlag, numberFlag } from './parse.js';
import { ENGINE_CHOICES } from '../training/engine-names.js';
import { DEFAULT_PRECISE_BN } from '../training/bn-stats.js';

export interface TrainingFlags {
  data: DatasetName;
  dataDir?: string;
  subset?: number;
  valFraction?: number;
  testSubset?: number;
  syntheticSamples?: number;
  augment: boolean;
  epochs?: number;
  steps?: number;
  batch: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  warmup: number;
  labelSmoothing: number;
  backend: TrainSettings['backend'];
  threads?: number;
  preciseBn: number;
}

/** With only --steps, epochs stop bounding the run. */
const UNBOUNDED_EPOCHS = 1_000_000;

/** The epochs that bound a run, or undefined when only a step budget does (--steps without --epochs). */
export function epochBound(s: Pick<TrainSettings, 'epochs'>): number | undefined {
  return s.epochs >= UNBOUNDED_EPOCHS ? undefined : s.epochs;
}

/** How long a trial trains, in the words of the flags: '3 epoch(s)', '500 steps', or '3 epoch(s) or 500 steps'. */
export function describeLength(s: Pick<TrainSettings, 'epochs' | 'steps'>): string {
  const epochs = epochBound(s);
  const parts = [...(epochs !== undefined ? [`${epochs} epoch(s)`] : []), ...(s.steps !== undefined ? [`${s.steps} steps`] : [])];
  return parts.join(' or ');
}

/** `mandatory: false` leaves --data and --epochs to be checked later (search may take them from a campaign file). */
export function addTrainingFlags(cmd: Command, epochs: { required: boolean; fallback: number; mandatory?: boolean }): Command {
  const mandatory = epochs.mandatory ?? true;
  const epochsHelp = epochs.required ? 'training epochs per candidate' : `training epochs (default ${epochs.fallback}, or unbounded with --steps)`;
  return cmd
    .addOption(new Option('--data <name>', 'dataset').choices([...DATASETS]).makeOptionMandatory(mandatory))
    .option('--data-dir <dir>', 'dataset directory (fashion-mnist: /usr/share/datasets/fashion-mnist; cifar: data/cifar-10-batches-bin)')
    .option('--subset <fraction>', 'fraction of the training split to train on (low-fidelity search; default 1)', numberFlag('--subset', { above: 0, max: 1 }))
    .option('--val-fraction <fraction>', 'fraction of the training set held out for validation (default 0.1)', numberFlag('--val-fraction', { above: 0, max: 0.9 }))
    .option('--test-subset <fraction>', 'fraction of the test split to evaluate (a fixed sample; default 1)', numberFlag('--test-subset', { above: 0, max: 1 }))
    .option('--synthetic-samples <n>', 'synthetic data only: training images (default 1024)', intFlag('--synthetic-samples', { min: 2 }))
    .option('--no-augment', 'turn off augmentation (default on: cifar 4 px pad-and-crop + flips, fashion-mnist 2 px + flips, synthetic 2 px, no flips)')
    .addOption(new Option('--epochs <n>', epochsHelp).argParser(intFlag('--epochs', { min: 1 })).makeOptionMandatory(epochs.required && mandatory))
    .option('--steps <n>', 'step budget; training ends at whichever of epochs or steps comes first', intFlag('--steps', { min: 1 }))
    .option('--batch <n>', 'batch size', intFlag('--batch', { min: 1 }), 128)
    .option('--lr <x>', 'peak learning rate (cosine decay to 0)', numberFlag('--lr', { above: 0 }), 0.1)
    .option('--momentum <m>', 'SGD momentum', numberFlag('--momentum', { min: 0, max: 0.999 }), 0.9)
    .option('--nesterov', 'Nesterov momentum', false)
    .option('--weight-decay <w>', 'L2 weight decay on conv and linear kernels', numberFlag('--weight-decay', { min: 0 }), 5e-4)
    .option('--warmup <epochs>', 'linear learning-rate warmup, in epochs', numberFlag('--warmup', { min: 0 }), 0)
    .option('--label-smoothing <s>', 'label smoothing', numberFlag('--label-smoothing', { min: 0, max: 0.99 }), 0)
    .addOption(new Option('--backend <name>', 'auto: torch (CUDA, then CPU), else tensorflow, else wasm, else cpu').choices(ENGINE_CHOICES).default('auto'))
    .option('--threads <n>', 'torch: intra-op threads per trial (default 1: one trial per core)', intFlag('--threads', { min: 1 }))
    .option(
      '--precise-bn <batches>',
      'before every evaluation, re-estimate the BN statistics from this many batches of training images at the current weights (mid-schedule, the running averages lag the weights; 0: use them)',
      intFlag('--precise-bn', { min: 0 }),
      DEFAULT_PRECISE_BN,
    );
}

export function trainSettings(f: TrainingFlags, defaultEpochs: number): TrainSettings {
  if (f.syntheticSamples !== undefined && f.data !== 'synthetic') throw new UserError('--synthetic-samples applies to --data synthetic only');
  if (f.dataDir !== undefined && f.data === 'synthetic') throw new UserError('--data-dir does not apply to --data synthetic');
  const data: TrainSettings['data'] = { name: f.data, augment: f.augment };
  if (f.dataDir !== undefined) data.dir = f.dataDir;
  if (f.subset !== undefined) data.subset = f.subset;
  if (f.valFraction !== undefined) data.valFraction = f.valFraction;
  if (f.testSubset !== undefined) data.testSubset = f.testSubset;
  if (f.syntheticSamples !== undefined) data.samples = f.syntheticSamples;
  const s: TrainSettings = {
    data,
    epochs: f.epochs ?? (f.steps !== undefined ? UNBOUNDED_EPOCHS : defaultEpochs),
    batchSize: f.batch,
    lr: f.lr,
    momentum: f.momentum,
    nesterov: f.nesterov,
    weightDecay: f.weightDecay,
    warmupEpochs: f.warmup,
    labelSmoothing: f.labelSmoothing,
    backend: f.backend,
  };
  if (f.steps !== undefined) s.steps = f.steps;
  if (f.threads !== undefined) s.threads = f.threads;
  if (f.preciseBn > 0) s.preciseBn = f.preciseBn;
  return s;
}
