/**
 * Pruning during the parent's training (early pruning): the network trains at full width, is scored and narrowed with
 * inherited weights at given epochs (0 = at initialisation), and training goes on with the same step counter and
 * learning-rate schedule; optionally fine-tuned after pruning at the end. Saved like `prune`'s children.
 */
import { complexity, type Complexity } from '../complexity/count.js';
import { baseWidths } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { CurvePointRecorder } from '../training/curve-points.js';
import type { PreparedData } from '../training/data/types.js';
import type { Engine, EngineNet } from '../training/engine.js';
import { keepAll, sliceWeights, type KeptIndices } from '../training/inherit.js';
import { evaluate, runLength, train, type StepProgress } from '../training/train.js';
import type { EpochCurve, TrainSettings } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { compileComplexity } from '../complexity/terms.js';
import { measure, type Allocation } from './allocate.js';
import { CRITERIA, scoringTemperature, type Combine } from './importance.js';
import { chooseByCriterion, loadPrepared, planWidths, savePruned, scoringBatches, scoringProvenance, type PruneTarget, type WidthPlan } from './prune.js';
import { lossAndGradNorm } from './gradients.js';
import { removedShare, pruneEpochs, stepWidths } from './schedule.js';

/** When to prune: an epoch (0 = the initialised net, k = after k epochs) or 'end' (after the last epoch). */
export type PruneAt = number | 'end';

export interface EarlyPruneRequest {
  spec: NetSpec;
  /** The final widths, resolved from the full width as one-shot `prune` resolves them. */
  target: PruneTarget;
  /** uniform (default): widths fixed in advance; global: each step's widths decided by the measure under a budget. */
  allocation?: Allocation;
  minKeep?: number;
  criterion: string;
  at: PruneAt;
  /** Pruning steps (1: one-shot) and epochs between them. */
  steps: number;
  every: number;
  combine: Combine;
  scoreBatches: number;
  temperature?: number;
  bnTraining?: boolean;
  /** Epochs of fine-tuning after the last step; only where it prunes after the last epoch. */
  finetuneEpochs: number;
  /** Peak learning rate of that fine-tuning (its own cosine schedule). */
  finetuneLr: number;
  settings: TrainSettings;
  seed: number;
  engine: Engine;
  saveDir?: string;
  /** Record the loss and gradient norm on the step's scoring batches just before and after each step (costs 2 passes). */
  measureFlow?: boolean;
}

/** The checked plan: the full widths, the final widths (uniform only), and the epoch and width plan of every step. */
export interface EarlyPrunePlan {
  fullWidths: WidthConfig;
  /** Known in advance under uniform allocation; under global the last step's budget decides them. */
  targetWidths?: WidthConfig;
  epochs: number[];
  steps: WidthPlan[];
}

/** One pruning step as recorded: kept indices are into the original (full-width) net's channels. */
export interface PruneStepRecord {
  epoch: number;
  widths: WidthConfig;
  kept: KeptIndices;
  flops: number;
  params: number;
  /** Validation error of the net just before and just after this step. */
  valErrorBefore: number;
  valErrorAfter: number;
  hessian?: string;
  /** With measureFlow: training loss and ‖g‖ on the scoring batches (BN on batch statistics, T = 1) before and after. */
  flow?: { lossBefore: number; lossAfter: number; gradNormBefore: number; gradNormAfter: number };
}

export interface EarlyPruneResult {
  status: 'complete' | 'failed';
  error?: string;
  widths: WidthConfig;
  kept: KeptIndices;
  complexity: Complexity;
  parentComplexity: Complexity;
  pruneSteps: PruneStepRecord[];
  /** Every epoch's curve; fine-tuning epochs follow the training epochs, numbered on. */
  curves: EpochCurve[];
  steps: number;
  valError?: number;
  testError?: number;
  trainLoss?: number;
  /** Test error right after pruning at the end, before fine-tuning. */
  testErrorBeforeFinetune?: number;
}

/**
 * Checks a request against the epochs the run has (every problem a UserError naming the flag) and resolves its
 * widths: the final widths are exactly what one-shot pruning of the full-width net to the same target gives.
 */
export function planEarlyPruning(req: Omit<EarlyPruneRequest, 'engine' | 'settings' | 'seed' | 'combine' | 'scoreBatches' | 'finetuneLr'>, epochs: number): EarlyPrunePlan {
  scoringTemperature(req.criterion, req.temperature);
  if (!(Number.isInteger(req.steps) && req.steps >= 1)) throw new UserError(`--prune-steps must be an integer >= 1, got ${req.steps}`);
  if (!(Number.isInteger(req.every) && req.every >= 1)) throw new UserError(`--prune-every must be an integer >= 1, got ${req.every}`);
  const at = req.at === 'end' ? epochs : req.at;
  if (!(Number.isInteger(at) && at >= 0)) throw new UserError(`--prune-at must be an epoch >= 0 or 'end', got ${req.at}`);
  if (at > epochs) throw new UserError(`--prune-at ${at} is beyond the run's ${epochs} epoch(s)`);
  const prunedAt = pruneEpochs(at, req.steps, req.every);
  const last = prunedAt[prunedAt.length - 1];
  if (last > epochs) {
    throw new UserError(`--prune-steps ${req.steps} every ${req.every} epoch(s) from epoch ${at} ends at epoch ${last}, beyond the run's ${epochs} epoch(s)`);
  }
  if (req.finetuneEpochs > 0 && last !== epochs) {
    throw new UserError(`--finetune-epochs applies only when the last pruning step is after the last epoch (--prune-at end); it is at epoch ${last} of ${epochs}`);
  }
  const fullWidths = baseWidths(req.spec);
  const plan = planWidths(req.spec, fullWidths, req.target, req.allocation, req.minKeep);
  if ('widths' in plan) {
    return { fullWidths, targetWidths: plan.widths, epochs: prunedAt, steps: stepWidths(fullWidths, plan.widths, req.steps).map((widths) => ({ widths })) };
  }
  // Global: step k's budget removes the cubic schedule's share of what the whole run removes, measured in the budget's own unit.
  const { budget, floor } = plan.global;
  const full = measure(compileComplexity(req.spec), fullWidths, budget.metric);
  const steps = Array.from({ length: req.steps }, (_, i): WidthPlan => {
    const limit = i === req.steps - 1 ? budget.limit : full - (full - budget.limit) * removedShare(i + 1, req.steps);
    return { global: { budget: { metric: budget.metric, limit: budget.metric === 'channels' ? Math.round(limit) : limit }, floor } };
  });
  return { fullWidths, epochs: prunedAt, steps };
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/**
 * Trains the full-width net and prunes it by the plan. Each step re-scores the current (already pruned) net, keeps
 * the best channels for that step's widths, and builds the narrower net with the inherited weights. The new net's
 * optimizer starts with empty momentum buffers: the engine contract does not expose optimizer state, and the buffer is
 * an average over about 1/(1 - momentum) steps (10 at 0.9), so it refills within a few dozen steps; the public code of
 * the gradient-flow paper resets it the same way by default. Learning rate, step counter and data order run on.
 * Throws UserError for bad input before anything is written; a diverging run comes back with status 'failed'.
 */
export async function trainWithPruning(
  req: EarlyPruneRequest,
  on: { epoch?: (c: EpochCurve) => void; step?: (p: StepProgress) => void; log?: (line: string) => void } = {},
): Promise<EarlyPruneResult> {
  const { spec, settings, seed } = req;
  const log = on.log ?? (() => {});
  const data: PreparedData = loadPrepared(settings.data, spec);
  const { epochs } = runLength(settings, data.train.indices.length);
  const plan = planEarlyPruning(req, epochs);
  const optimizer = { momentum: settings.momentum, nesterov: settings.nesterov, weightDecay: settings.weightDecay };
  const evalBatch = 2 * settings.batchSize;
  const needsBatches = CRITERIA[req.criterion].needs !== 'weights' || req.measureFlow === true;
  const records: PruneStepRecord[] = [];
  let keptOriginal = keepAll(plan.fullWidths);
  let lastVal = Number.NaN;
  let current: EngineNet | undefined = await req.engine.build(spec, plan.fullWidths, seed, optimizer);
  const recorder = new CurvePointRecorder();
  try {
    const afterEpoch = async (epoch: number, net: EngineNet): Promise<EngineNet | undefined> => {
      const k = plan.epochs.indexOf(epoch);
      if (k < 0) return undefined;
      // Step 0 draws the same batches `prune` would, so pruning at initialisation equals pruning a saved initial net.
      const batches = needsBatches ? scoringBatches(data, req.scoreBatches, settings.batchSize, seed, k) : [];
      const before = epoch === 0 ? (await evaluate(net, data, data.val, evalBatch)).error : lastVal;
      const flowBefore = req.measureFlow ? await lossAndGradNorm(net, batches) : undefined;
      const { kept, widths, hessian } = await chooseByCriterion(net, plan.steps[k], req.criterion, batches, {
        combine: req.combine,
        seed,
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.bnTraining !== undefined ? { bnTraining: req.bnTraining } : {}),
        log,
      });
      const child = sliceWeights(spec, net.widths, await net.readWeights(), kept);
      const next = await req.engine.build(spec, widths, seed, optimizer);
      try {
        await next.writeWeights(child.weights);
      } catch (e) {
        next.dispose();
        throw e;
      }
      net.dispose();
      current = next;
      keptOriginal = kept.map((list, g) => list.map((i) => keptOriginal[g][i]));
      const after = (await evaluate(next, data, data.val, evalBatch)).error;
      const flowAfter = flowBefore ? await lossAndGradNorm(next, batches) : undefined;
      const c = complexity(spec, widths);
      records.push({
        epoch, widths, kept: keptOriginal, flops: c.flops, params: c.params, valErrorBefore: before, valErrorAfter: after, ...(hessian ? { hessian } : {}),
        ...(flowBefore && flowAfter
          ? { flow: { lossBefore: flowBefore.loss, lossAfter: flowAfter.loss, gradNormBefore: flowBefore.gradNorm, gradNormAfter: flowAfter.gradNorm } }
          : {}),
      });
      log(`pruned at epoch ${epoch} (step ${k + 1}/${plan.epochs.length}) by ${req.criterion}: widths ${widths.join(',')}, ${c.flops.toLocaleString('en-US')} FLOPs; val err ${pct(before)} -> ${pct(after)}`);
      return next;
    };
    const outcome = await train(
      current, data, { ...settings, augment: settings.data.augment }, seed,
      (curve) => {
        curve.points = recorder.take(curve.epoch);
        lastVal = curve.valError;
        on.epoch?.(curve);
      },
      (p) => {
        recorder.onStep(p);
        on.step?.(p);
      },
      { afterEpoch },
    );
    const net: EngineNet = current;
    const result: EarlyPruneResult = {
      status: outcome.status,
      ...(outcome.error ? { error: outcome.error } : {}),
      widths: net.widths,
      kept: keptOriginal,
      complexity: complexity(spec, net.widths),
      parentComplexity: complexity(spec, plan.fullWidths),
      pruneSteps: records,
      curves: outcome.curves,
      steps: outcome.steps,
      valError: outcome.valError,
      testError: outcome.testError,
      trainLoss: outcome.trainLoss,
    };
    if (outcome.status === 'complete' && records.length < plan.epochs.length) {
      throw new Error(`pruned ${records.length} of ${plan.epochs.length} planned steps`);
    }
    if (outcome.status === 'complete' && req.finetuneEpochs > 0) {
      result.testErrorBeforeFinetune = outcome.testError;
      const ft = await train(
        net, data, { ...settings, epochs: req.finetuneEpochs, steps: undefined, lr: req.finetuneLr, warmupEpochs: 0, augment: settings.data.augment }, seed,
        (curve) => {
          curve.epoch += outcome.curves.length;
          on.epoch?.(curve);
        },
      );
      Object.assign(result, {
        status: ft.status,
        ...(ft.error ? { error: ft.error } : {}),
        curves: [...outcome.curves, ...ft.curves],
        steps: outcome.steps + ft.steps,
        valError: ft.valError,
        testError: ft.testError,
        trainLoss: ft.trainLoss,
      });
    }
    if (result.status === 'complete' && req.saveDir) {
      await savePruned(
        net,
        req.saveDir,
        {
          parent: 'this run (pruned during training)',
          parentWidths: plan.fullWidths,
          ...scoringProvenance(req),
          ...(records.find((r) => r.hessian) ? { hessian: records.find((r) => r.hessian)!.hessian } : {}),
          kept: keptOriginal,
          fineTuneEpochs: req.finetuneEpochs,
          during: { at: plan.epochs[0], every: req.every, schedule: 'cubic', steps: records },
        },
        {
          metrics: {
            valError: result.valError,
            testError: result.testError,
            trainLoss: result.trainLoss,
            ...(result.testErrorBeforeFinetune !== undefined ? { testErrorBeforeFinetune: result.testErrorBeforeFinetune } : {}),
            epochs: result.curves.length,
            steps: result.steps,
            engine: req.engine.name,
          },
          seed,
          settings,
        },
      );
    }
    return result;
  } finally {
    current?.dispose();
  }
}
