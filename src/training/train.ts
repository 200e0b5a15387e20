/**
 * The training loop: SGD with momentum (optionally Nesterov), L2 weight decay on conv and linear kernels, linear
 * warmup then cosine decay per step, optional label smoothing; per-epoch curves; a non-finite loss fails the run.
 * Written once over EngineNet: schedule, data order, augmentation and the NaN guard stay here for every engine.
 */
import { makeRng } from '../util/rng.js';
import { recalibrateBn } from './bn-stats.js';
import { makeBatch, normaliser, skipAugmentation } from './data/batch.js';
import { permutation } from './data/prepare.js';
import type { PreparedData, Split } from './data/types.js';
import type { EngineBatch, EngineNet } from './engine.js';
import type { EpochCurve, TrainSettings } from './types.js';

export type LoopSettings = Omit<TrainSettings, 'data' | 'backend'> & {
  /** Images per evaluation batch (forward only); defaults to twice the training batch. */
  evalBatchSize?: number;
  /** Apply the dataset's augmentation (default true). */
  augment?: boolean;
  /**
   * Train only steps [startStep, stopStep) of the run these settings define (a rung of a multi-fidelity campaign): the
   * schedule, data order and augmentation are those of the whole run, so consecutive segments, each resumed from the
   * previous one's checkpoint, train exactly as one run. The net must hold the state after startStep.
   */
  startStep?: number;
  stopStep?: number;
  /**
   * Steps of the run after which to also evaluate the validation and test splits (a run trained in one go that stands
   * in for every rung of a rung campaign). Evaluation runs in inference mode and draws no random number, so the
   * weights and the rest of the run are those of a run without it.
   */
  evalAt?: readonly number[];
};

/** The net as it was after `step` steps of the run (an `evalAt` step). */
export interface StepEvaluation {
  step: number;
  /** Epochs trained from the start of the run (fractional mid-epoch). */
  epochs: number;
  valError: number;
  valLoss: number;
  testError: number;
  /** Mean training loss of the epoch so far. */
  trainLoss: number;
  /** Training images this call consumed up to that step. */
  images: number;
}

export interface TrainOutcome {
  status: 'complete' | 'failed';
  error?: string;
  curves: EpochCurve[];
  steps: number;
  trainLoss?: number;
  valError?: number;
  valLoss?: number;
  testError?: number;
  testLoss?: number;
  /** Training images per second, evaluation excluded. */
  imagesPerSecond?: number;
  /** Training images this call consumed (its steps times the batch). */
  images: number;
  /** Epochs trained from the start of the run when it ended (fractional where it ended mid-epoch). */
  epochs?: number;
  /** The evaluations at `evalAt` steps this call reached, in step order. */
  evaluations?: StepEvaluation[];
}

/** What the step hook sees after every optimizer step (progress lines, within-epoch curve points). */
export interface StepProgress {
  epoch: number;
  /** Steps taken so far in the whole run, this one included. */
  step: number;
  totalSteps: number;
  /** The step this call stops at: totalSteps, or earlier where it trains one rung of the run. */
  stopStep: number;
  stepsPerEpoch: number;
  /** This batch's mean loss and its count of misclassified images. */
  loss: number;
  wrong: number;
  images: number;
  /** Training seconds so far, evaluation excluded. */
  seconds: number;
}

/**
 * Optional hooks of the loop. `afterEpoch` runs before the first epoch (epoch 0, the initialised net) and after every
 * epoch's curve (epoch k, after its validation); a net it returns replaces the trained one from the next step on,
 * while the step counter, the learning-rate schedule and the data order run on unchanged, so a run that changes its
 * net stays comparable with one that does not. The replacement is a freshly built EngineNet, so its optimizer state
 * starts empty: the hook's caller owns both nets and disposes the old one. After the last epoch the replacement is
 * what the test split evaluates.
 */
export interface TrainHooks {
  afterEpoch?: (epoch: number, net: EngineNet) => Promise<EngineNet | undefined>;
}

/** Linear warmup from lr/W to lr over W steps, then half a cosine down to 0 at the last step. */
export function learningRate(step: number, totalSteps: number, warmupSteps: number, peak: number): number {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  return 0.5 * peak * (1 + Math.cos((Math.PI * Math.min(step - warmupSteps, span)) / span));
}

/**
 * How long a run on `trainImages` images is: the last incomplete batch of an epoch is dropped, and the run ends at
 * whichever of its epochs or its step budget comes first.
 */
export function runLength(s: Pick<LoopSettings, 'batchSize' | 'epochs' | 'steps'>, trainImages: number): { batchSize: number; stepsPerEpoch: number; totalSteps: number; epochs: number } {
  const batchSize = Math.min(s.batchSize, trainImages);
  const stepsPerEpoch = Math.floor(trainImages / batchSize);
  const totalSteps = Math.min(s.epochs * stepsPerEpoch, s.steps ?? Infinity);
  return { batchSize, stepsPerEpoch, totalSteps, epochs: Math.ceil(totalSteps / stepsPerEpoch) };
}

/** Mean cross-entropy (no smoothing) and error rate of the net on a split, in inference mode. */
export async function evaluate(
  net: EngineNet,
  data: PreparedData,
  split: Split,
  batchSize: number,
): Promise<{ loss: number; error: number }> {
  const lut = normaliser(data);
  const n = split.indices.length;
  let lossSum = 0;
  let wrong = 0;
  for (let start = 0; start < n; start += batchSize) {
    const positions = Int32Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const r = await net.evaluate(makeBatch(data, split, positions, lut));
    lossSum += r.lossSum;
    wrong += r.wrong;
  }
  return { loss: lossSum / n, error: wrong / n };
}

/** The images precise BN pools over: `batches` batches of the training split, unaugmented, in a seeded order of their own. */
export function preciseBnBatches(data: PreparedData, batches: number, batchSize: number, seed: number): EngineBatch[] {
  const n = data.train.indices.length;
  const order = permutation(n, makeRng(seed, 'precise-bn'));
  const lut = normaliser(data);
  const out: EngineBatch[] = [];
  for (let start = 0; out.length < batches && start < n; start += batchSize) {
    out.push(makeBatch(data, data.train, order.subarray(start, Math.min(n, start + batchSize)), lut));
  }
  return out;
}

/**
 * Trains the net in place. One seed fixes the data order and augmentation; the net's own seed fixed its
 * initialisation. The last incomplete batch of an epoch is dropped so every step has the same shape and BN
 * never sees a tiny batch. Never throws for a diverging run: returns status 'failed' with the reason.
 */
export async function train(
  net: EngineNet,
  data: PreparedData,
  s: LoopSettings,
  seed: number,
  onEpoch?: (c: EpochCurve) => void,
  onStep?: (p: StepProgress) => void,
  hooks?: TrainHooks,
): Promise<TrainOutcome> {
  const nTrain = data.train.indices.length;
  const { batchSize, stepsPerEpoch, totalSteps, epochs } = runLength(s, nTrain);
  const warmupSteps = Math.min(Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps);
  const evalBatch = s.evalBatchSize ?? 2 * s.batchSize;
  const lut = normaliser(data);

  const curves: EpochCurve[] = [];
  const startStep = s.startStep ?? 0;
  const stopStep = Math.min(s.stopStep ?? totalSteps, totalSteps);
  let step = startStep;
  let trainSeconds = 0;
  const evalAt = new Set((s.evalAt ?? []).filter((k) => k > startStep && k <= stopStep));
  const evaluations: StepEvaluation[] = [];
  // Precise BN before every evaluation; its images come from their own random stream, so training is unchanged.
  let bnBatches: EngineBatch[] | undefined;
  let bnStale = true;
  const refreshBn = async (): Promise<void> => {
    if (!s.preciseBn || !bnStale) return;
    bnBatches ??= preciseBnBatches(data, s.preciseBn, batchSize, seed);
    await recalibrateBn(net, net.spec, bnBatches);
    bnStale = false;
  };
  const swap = async (epoch: number): Promise<void> => {
    const next = await hooks?.afterEpoch?.(epoch, net);
    if (next) {
      net = next;
      bnStale = true;
    }
  };
  if (startStep === 0) await swap(0);
  const firstEpoch = Math.floor(startStep / stepsPerEpoch) + 1;
  const lastEpoch = Math.min(epochs, Math.ceil(stopStep / stepsPerEpoch));
  for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
    const started = performance.now();
    const order = permutation(nTrain, makeRng(seed, `order/${epoch}`));
    const augmentRng = s.augment === false ? undefined : makeRng(seed, `augment/${epoch}`);
    const firstBatch = epoch === firstEpoch ? startStep - (epoch - 1) * stepsPerEpoch : 0;
    if (augmentRng && firstBatch > 0) skipAugmentation(data, augmentRng, firstBatch * batchSize);
    let lossSum = 0;
    let wrong = 0;
    let seen = 0;
    let lr = 0;
    // Time spent in mid-run evaluations: not training time.
    let evalSeconds = 0;
    for (let b = firstBatch; b < stepsPerEpoch && step < stopStep; b++, step++) {
      lr = learningRate(step, totalSteps, warmupSteps, s.lr);
      const batch = makeBatch(data, data.train, order.subarray(b * batchSize, (b + 1) * batchSize), lut, augmentRng);
      const r = await net.trainStep(batch, lr, s.labelSmoothing);
      bnStale = true;
      if (!Number.isFinite(r.loss)) {
        const what = Number.isNaN(r.loss) ? 'NaN' : 'infinite';
        return {
          status: 'failed',
          error: `training loss became ${what} at epoch ${epoch}, step ${step + 1} (lr ${lr.toPrecision(3)})`,
          curves,
          steps: step + 1,
          images: (step + 1 - startStep) * batchSize,
        };
      }
      lossSum += r.loss * batch.size;
      wrong += r.wrong;
      seen += batch.size;
      const seconds = trainSeconds + (performance.now() - started) / 1000 - evalSeconds;
      if (evalAt.has(step + 1)) {
        const evalStarted = performance.now();
        await refreshBn();
        const val = await evaluate(net, data, data.val, evalBatch);
        const test = await evaluate(net, data, data.test, evalBatch);
        evaluations.push({ step: step + 1, epochs: (step + 1) / stepsPerEpoch, valError: val.error, valLoss: val.loss, testError: test.error, trainLoss: lossSum / seen, images: (step + 1 - startStep) * batchSize });
        evalSeconds += (performance.now() - evalStarted) / 1000;
      }
      onStep?.({ epoch, step: step + 1, totalSteps, stopStep, stepsPerEpoch, loss: r.loss, wrong: r.wrong, images: batch.size, seconds });
    }
    const trainTime = (performance.now() - started) / 1000 - evalSeconds;
    trainSeconds += trainTime;
    await refreshBn();
    const val = await evaluate(net, data, data.val, evalBatch);
    const curve: EpochCurve = {
      epoch,
      trainLoss: lossSum / seen,
      trainError: wrong / seen,
      valLoss: val.loss,
      valError: val.error,
      lr,
      seconds: (performance.now() - started) / 1000,
      // A rung that stops mid-epoch validates there, not at the epoch's end.
      ...(step < epoch * stepsPerEpoch ? { epochs: step / stepsPerEpoch } : {}),
    };
    curves.push(curve);
    onEpoch?.(curve);
    await swap(epoch);
  }
  const last = curves[curves.length - 1];
  await refreshBn();
  const test = await evaluate(net, data, data.test, evalBatch);
  return {
    status: 'complete',
    curves,
    steps: step,
    images: (step - startStep) * batchSize,
    epochs: step / stepsPerEpoch,
    trainLoss: last?.trainLoss,
    valError: last?.valError,
    valLoss: last?.valLoss,
    testError: test.error,
    testLoss: test.loss,
    ...(evaluations.length ? { evaluations } : {}),
    imagesPerSecond: trainSeconds > 0 ? ((step - startStep) * batchSize) / trainSeconds : undefined,
  };
}

/**
 * Where each rung of a run of `totalSteps` steps stops: rung r of R with reduction factor eta trains to
 * floor(totalSteps / eta^(R-1-r)), so the top rung is the whole run and rung 0 its 1/eta^(R-1).
 */
export function rungStopSteps(totalSteps: number, rungs: number, eta: number): number[] {
  return Array.from({ length: rungs }, (_, r) => Math.floor(totalSteps / eta ** (rungs - 1 - r)));
}
