/**
 * The training loop: SGD with momentum (optionally Nesterov), L2 weight decay on conv and linear kernels, linear
 * warmup then cosine decay per step, optional label smoothing; per-epoch curves; a non-finite loss fails the run.
 */
import * as tf from '@tensorflow/tfjs';
import { makeRng } from '../util/rng.js';
import { makeBatch, normaliser } from './data/batch.js';
import { permutation } from './data/prepare.js';
import type { PreparedData, Split } from './data/types.js';
import { decayedWeights } from './model.js';
import type { EpochCurve, TrainSettings } from './types.js';

export type LoopSettings = Omit<TrainSettings, 'data' | 'backend'> & {
  /** Images per evaluation batch (forward only); defaults to twice the training batch. */
  evalBatchSize?: number;
  /** Apply the dataset's augmentation (default true). */
  augment?: boolean;
};

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
}

/** What the step hook sees after every optimizer step (progress lines, within-epoch curve points). */
export interface StepProgress {
  epoch: number;
  /** Steps taken so far in the whole run, this one included. */
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
  /** This batch's mean loss and its count of misclassified images. */
  loss: number;
  wrong: number;
  images: number;
  /** Training seconds so far, evaluation excluded. */
  seconds: number;
}

/** Linear warmup from lr/W to lr over W steps, then half a cosine down to 0 at the last step. */
export function learningRate(step: number, totalSteps: number, warmupSteps: number, peak: number): number {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  return 0.5 * peak * (1 + Math.cos((Math.PI * Math.min(step - warmupSteps, span)) / span));
}

/** Mean cross-entropy (no smoothing) and error rate of the model on a split, in inference mode. */
export function evaluate(
  model: tf.LayersModel,
  data: PreparedData,
  split: Split,
  batchSize: number,
): { loss: number; error: number } {
  const lut = normaliser(data);
  const [h, w, c] = data.shape;
  const n = split.indices.length;
  let lossSum = 0;
  let wrong = 0;
  for (let start = 0; start < n; start += batchSize) {
    const positions = Int32Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const batch = makeBatch(data, split, positions, lut);
    const [l, e] = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [batch.size, h, w, c]);
      const labels = tf.tensor1d(batch.labels, 'int32');
      const logits = model.apply(x, { training: false }) as tf.Tensor2D;
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, data.classes), logits, undefined, 0, tf.Reduction.SUM);
      const wrongCount = tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), 'float32'));
      return [loss.dataSync()[0], wrongCount.dataSync()[0]];
    });
    lossSum += l;
    wrong += e;
  }
  return { loss: lossSum / n, error: wrong / n };
}

/**
 * Trains the model in place. One seed fixes the data order and augmentation; the model's own seed fixed its
 * initialisation. The last incomplete batch of an epoch is dropped so every step has the same shape and BN
 * never sees a tiny batch. Never throws for a diverging run: returns status 'failed' with the reason.
 */
export async function train(
  model: tf.LayersModel,
  data: PreparedData,
  s: LoopSettings,
  seed: number,
  onEpoch?: (c: EpochCurve) => void,
  onStep?: (p: StepProgress) => void,
): Promise<TrainOutcome> {
  const [h, w, c] = data.shape;
  const nTrain = data.train.indices.length;
  const batchSize = Math.min(s.batchSize, nTrain);
  const stepsPerEpoch = Math.floor(nTrain / batchSize);
  const totalSteps = Math.min(s.epochs * stepsPerEpoch, s.steps ?? Infinity);
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  const warmupSteps = Math.min(Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps);
  const evalBatch = s.evalBatchSize ?? 2 * s.batchSize;
  const lut = normaliser(data);

  const weights = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const decayed = decayedWeights(model);
  const optimizer = tf.train.momentum(s.lr, s.momentum, s.nesterov);
  const curves: EpochCurve[] = [];
  let step = 0;
  let trainSeconds = 0;
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const started = performance.now();
      const order = permutation(nTrain, makeRng(seed, `order/${epoch}`));
      const augmentRng = s.augment === false ? undefined : makeRng(seed, `augment/${epoch}`);
      let lossSum = 0;
      let wrong = 0;
      let seen = 0;
      let lr = 0;
      for (let b = 0; b < stepsPerEpoch && step < totalSteps; b++, step++) {
        lr = learningRate(step, totalSteps, warmupSteps, s.lr);
        optimizer.setLearningRate(lr);
        const batch = makeBatch(data, data.train, order.subarray(b * batchSize, (b + 1) * batchSize), lut, augmentRng);
        const [loss, wrongCount] = trainStep(model, optimizer, weights, decayed, batch, [h, w, c], data.classes, s);
        const [lossValue, wrongValue] = await Promise.all([loss.data(), wrongCount.data()]);
        loss.dispose();
        wrongCount.dispose();
        if (!Number.isFinite(lossValue[0])) {
          const what = Number.isNaN(lossValue[0]) ? 'NaN' : 'infinite';
          return {
            status: 'failed',
            error: `training loss became ${what} at epoch ${epoch}, step ${step + 1} (lr ${lr.toPrecision(3)})`,
            curves,
            steps: step + 1,
          };
        }
        lossSum += lossValue[0] * batch.size;
        wrong += wrongValue[0];
        seen += batch.size;
        const seconds = trainSeconds + (performance.now() - started) / 1000;
        onStep?.({ epoch, step: step + 1, totalSteps, stepsPerEpoch, loss: lossValue[0], wrong: wrongValue[0], images: batch.size, seconds });
      }
      const trainTime = (performance.now() - started) / 1000;
      trainSeconds += trainTime;
      const val = evaluate(model, data, data.val, evalBatch);
      const curve: EpochCurve = {
        epoch,
        trainLoss: lossSum / seen,
        trainError: wrong / seen,
        valLoss: val.loss,
        valError: val.error,
        lr,
        seconds: (performance.now() - started) / 1000,
      };
      curves.push(curve);
      onEpoch?.(curve);
    }
  } finally {
    optimizer.dispose();
  }
  const last = curves[curves.length - 1];
  const test = evaluate(model, data, data.test, evalBatch);
  return {
    status: 'complete',
    curves,
    steps: step,
    trainLoss: last?.trainLoss,
    valError: last?.valError,
    valLoss: last?.valLoss,
    testError: test.error,
    testLoss: test.loss,
    imagesPerSecond: trainSeconds > 0 ? (step * batchSize) / trainSeconds : undefined,
  };
}

/** One SGD step (exported for the speed benchmark); returns the batch's mean loss and its count of misclassified images (the caller disposes them). */
export function trainStep(
  model: tf.LayersModel,
  optimizer: tf.MomentumOptimizer,
  weights: tf.Variable[],
  decayed: Set<string>,
  batch: { x: Float32Array; labels: Int32Array; size: number },
  [h, w, c]: [number, number, number],
  classes: number,
  s: LoopSettings,
): [tf.Scalar, tf.Scalar] {
  return tf.tidy(() => {
    const x = tf.tensor4d(batch.x, [batch.size, h, w, c]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const onehot = tf.oneHot(labels, classes);
    let wrongCount: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      // Kept out of the gradient scope's cleanup so the error rate costs no second forward pass.
      wrongCount = tf.keep(tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), 'float32'))) as tf.Scalar;
      return tf.losses.softmaxCrossEntropy(onehot, logits, undefined, s.labelSmoothing) as tf.Scalar;
    }, weights);
    // L2 weight decay (coupled, as PyTorch's SGD weight_decay): g + wd * w, only for conv and linear kernels.
    if (s.weightDecay > 0) {
      for (const v of weights) if (decayed.has(v.name)) grads[v.name] = tf.add(grads[v.name], tf.mul(v, s.weightDecay));
    }
    optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
    return [value, wrongCount!];
  });
}
