/**
 * A saved parent's channel scores by one criterion, computed once and kept as plain JSON: what an inheriting
 * campaign caches so that every trial's kept channels are a pure function of the scores and the trial's widths.
 */
import { channelMap } from '../nets/channels.js';
import type { WidthConfig } from '../nets/types.js';
import type { Engine } from '../training/engine.js';
import type { KeptIndices } from '../training/inherit.js';
import type { TrainSettings } from '../training/types.js';
import { chooseKept } from './choose.js';
import { CRITERIA, scoreGroups, scoringTemperature, type Combine } from './importance.js';
import { loadPrepared, readParent, readParentWeights, scoringBatches } from './prune.js';

/** Batches whose gradients are averaged for gradient-based criteria (as `prune --score-batches`' default). */
export const PARENT_SCORE_BATCHES = 4;

/** The cached scores: one score per parent channel per group, and what produced them. */
export interface ParentScores {
  criterion: string;
  combine: Combine;
  parentWidths: WidthConfig;
  /** Groups in width-configuration order; higher keeps. */
  scores: number[][];
  /** Batches averaged for the gradient (0: the criterion reads weights only). */
  scoreBatches: number;
  /** Logit temperature and BN mode of the scoring loss (gradient-based criteria; absent in older caches: 1, inference). */
  temperature?: number;
  bnTrain?: boolean;
  seed: number;
  hessian?: string;
}

/** Scores the parent in `dir` on `engine`; gradient-based criteria read batches of the campaign's training data. */
export async function scoreParent(
  dir: string,
  engine: Engine,
  opts: { criterion: string; combine: Combine; settings: TrainSettings; seed: number; batches?: number; temperature?: number; bnTrain?: boolean },
): Promise<ParentScores> {
  const temperature = scoringTemperature(opts.criterion, opts.temperature);
  const parent = readParent(dir);
  const { spec } = parent;
  const pw = parent.metadata.widths;
  const weights = await readParentWeights(parent);
  const needsData = CRITERIA[opts.criterion].needs !== 'weights';
  const s = opts.settings;
  const net = await engine.build(spec, pw, opts.seed, { momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weightDecay });
  try {
    await net.writeWeights(weights);
    const batches = needsData ? scoringBatches(loadPrepared(s.data, spec), opts.batches ?? PARENT_SCORE_BATCHES, s.batchSize, opts.seed) : [];
    const bnTrain = opts.bnTrain ?? false;
    const scored = await scoreGroups(net, channelMap(spec), opts.criterion, batches, { combine: opts.combine, seed: opts.seed, temperature, training: bnTrain });
    return {
      criterion: opts.criterion,
      combine: opts.combine,
      parentWidths: pw,
      scores: scored.scores.map((g) => Array.from(g)),
      scoreBatches: needsData ? batches.length : 0,
      ...(needsData ? { temperature, bnTrain } : {}),
      seed: opts.seed,
      ...(scored.hessian ? { hessian: scored.hessian } : {}),
    };
  } finally {
    net.dispose();
  }
}

/** The parent channels a subnetwork of `widths` keeps: the top scores per group (zero-pad chains agreeing, see chooseKept). */
export function keptFor(spec: Parameters<typeof channelMap>[0], scores: ParentScores, widths: WidthConfig): KeptIndices {
  return chooseKept(channelMap(spec), scores.scores.map((g) => Float64Array.from(g)), scores.parentWidths, widths);
}
