/**
 * Prunes a saved prunespace model: score its channels by a criterion, keep the best per group, inherit the weights,
 * optionally fine-tune, and save the child as a stock tfjs LayersModel with its provenance in prunespace.json.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { complexity, type Complexity } from '../complexity/count.js';
import { channelMap } from '../nets/channels.js';
import { buildNet } from '../nets/registry.js';
import { checkWidths } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { makeBatch, normaliser } from '../training/data/batch.js';
import { loadData } from '../training/data/load.js';
import { permutation } from '../training/data/prepare.js';
import type { PreparedData } from '../training/data/types.js';
import type { EngineBatch, Engine, EngineNet, WeightSet } from '../training/engine.js';
import { readLayersWeights } from '../training/engines/layers-weights.js';
import { sliceWeights, type KeptIndices } from '../training/inherit.js';
import { loadTrained, METADATA_JSON, MODEL_JSON, saveNet, type SavedMetadata } from '../training/save.js';
import { DEFAULT_PRECISE_BN, recalibrateBn } from '../training/bn-stats.js';
import { evaluate, preciseBnBatches, train } from '../training/train.js';
import type { DataSettings, TrainSettings } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { makeRng } from '../util/rng.js';
import { allocateGlobal, DEFAULT_MIN_KEEP, globalPlan, type Allocation, type GlobalPlan } from './allocate.js';
import { chooseKept } from './choose.js';
import { checkCriterion, CRITERIA, scoreGroups, scoringTemperature, type Combine } from './importance.js';
import { checkChildWidths, keepFromParent, widthsForMetric } from './targets.js';

export type PruneTarget = { keep: number } | { widths: WidthConfig } | { flops: number } | { params: number };

/** How the child's widths are decided: fixed in advance (uniform), or by the measure under a budget (global). */
export type WidthPlan = { widths: WidthConfig } | { global: GlobalPlan };

/** One line of what a width plan aims at: its widths, or its global budget and floor. */
export function describeStep(plan: WidthPlan): string {
  if ('widths' in plan) return `widths ${plan.widths.join(',')}`;
  const { budget, floor } = plan.global;
  return `global allocation to ${Math.round(budget.limit).toLocaleString('en-US')} ${budget.metric === 'flops' ? 'FLOPs' : budget.metric} (every group keeps at least ${floor.join(',')})`;
}

/**
 * The width plan for pruning a net at `fullWidths` to a target: uniform resolves the widths now, global checks the
 * budget against the --min-keep floor and leaves the widths to the scores.
 */
export function planWidths(spec: NetSpec, fullWidths: WidthConfig, target: PruneTarget, allocation: Allocation = 'uniform', minKeep = DEFAULT_MIN_KEEP): WidthPlan {
  if (allocation === 'global') return { global: globalPlan(spec, fullWidths, target, minKeep) };
  return { widths: resolveTarget(spec, fullWidths, target) };
}

export interface PruneRequest {
  parentDir: string;
  criterion: string;
  target: PruneTarget;
  /** uniform (default): one keep ratio in every group; global: the measure decides each group's width. */
  allocation?: Allocation;
  /** Global allocation: share of every group's width always kept (default 5%). */
  minKeep?: number;
  outDir: string;
  combine: Combine;
  /** Batches whose gradients are averaged for gradient-based criteria. */
  scoreBatches: number;
  temperature?: number;
  /** BN in training mode while scoring (default: inference mode, as the paper's code). */
  bnTraining?: boolean;
  seed: number;
  /** Fine-tuning settings; epochs 0 skips fine-tuning. The data also feeds scoring and evaluation. */
  settings: TrainSettings;
  engine: Engine;
  engineName: string;
}

export interface ParentModel {
  dir: string;
  metadata: SavedMetadata;
  spec: NetSpec;
}

/** Reads and checks a parent directory without loading its weights; every problem is a UserError naming the path. */
export function readParent(dir: string): ParentModel {
  const metaPath = join(dir, METADATA_JSON);
  if (!existsSync(join(dir, MODEL_JSON)) || !existsSync(metaPath)) {
    throw new UserError(`--parent ${dir}: not a prunespace model directory (needs ${MODEL_JSON} and ${METADATA_JSON})`);
  }
  let metadata: SavedMetadata;
  try {
    metadata = JSON.parse(readFileSync(metaPath, 'utf8')) as SavedMetadata;
  } catch (e) {
    throw new UserError(`${metaPath}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!metadata || typeof metadata !== 'object' || !metadata.net || !Array.isArray(metadata.widths)) {
    throw new UserError(`${metaPath}: lacks the network and widths of a prunespace model`);
  }
  const spec = buildNet(metadata.net as NetSpec['ref']);
  checkWidths(spec, metadata.widths);
  return { dir, metadata, spec };
}

/** The parent's weights in tfjs layout (the tfjs model is read and released). */
export async function readParentWeights(parent: ParentModel): Promise<WeightSet> {
  const { model } = await loadTrained(parent.dir);
  try {
    return readLayersWeights(model, parent.spec);
  } finally {
    model.dispose();
  }
}

/** Widths of the child from the request's target, checked against the parent. */
export function targetWidths(parent: ParentModel, target: PruneTarget): WidthConfig {
  return resolveTarget(parent.spec, parent.metadata.widths, target);
}

/** Widths of a child of a net at `parentWidths` for a target; a target it cannot reach is a UserError. */
export function resolveTarget(spec: NetSpec, parentWidths: WidthConfig, target: PruneTarget): WidthConfig {
  if ('keep' in target) return keepFromParent(parentWidths, target.keep);
  if ('widths' in target) {
    checkChildWidths(spec, parentWidths, target.widths);
    return target.widths;
  }
  if ('params' in target) return widthsForMetric(spec, parentWidths, target.params, 'params').widths;
  return widthsForMetric(spec, parentWidths, target.flops, 'flops').widths;
}

/** The output directory must be new or empty, so a run never mixes with or overwrites an earlier one. */
export function checkOutDir(dir: string, flag = '--out'): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UserError(`${flag} ${dir} exists and is not empty`);
}

/** `n` seeded training batches for gradient-based scoring; `round` > 0 draws a different set for a later pruning step. */
export function scoringBatches(data: PreparedData, n: number, size: number, seed: number, round = 0): EngineBatch[] {
  const order = permutation(data.train.indices.length, makeRng(seed, round > 0 ? `score-batches/${round}` : 'score-batches'));
  const lut = normaliser(data);
  const batches: EngineBatch[] = [];
  const per = Math.min(size, data.train.indices.length);
  for (let b = 0; b < n && (b + 1) * per <= order.length; b++) batches.push(makeBatch(data, data.train, order.subarray(b * per, (b + 1) * per), lut));
  return batches;
}

export interface PruneResult {
  widths: WidthConfig;
  kept: KeptIndices;
  complexity: Complexity;
  parentComplexity: Complexity;
  hessian?: string;
  metrics: Record<string, number | string | undefined>;
}

/** Provenance of a pruned model, stored under `pruned` in its prunespace.json. */
export interface PrunedProvenance {
  parent: string;
  parentWidths: WidthConfig;
  parentComplexity: Complexity;
  criterion: string;
  combine: Combine;
  /** uniform or global (with the budget and floor it met); absent in models saved before allocation was a choice. */
  allocation?: Allocation;
  minKeep?: number;
  scoreBatches: number;
  temperature?: number;
  hessian?: string;
  kept: KeptIndices;
  fineTuneEpochs: number;
}

/** Checks everything that can be checked without computing, so bad input writes nothing. */
export function checkRequest(
  req: Pick<PruneRequest, 'parentDir' | 'criterion' | 'target' | 'outDir' | 'allocation' | 'minKeep' | 'temperature'>,
): { parent: ParentModel; plan: WidthPlan } {
  scoringTemperature(req.criterion, req.temperature);
  const parent = readParent(req.parentDir);
  const plan = planWidths(parent.spec, parent.metadata.widths, req.target, req.allocation, req.minKeep);
  checkOutDir(req.outDir);
  return { parent, plan };
}

/** How a net is scored for pruning: the request fields that scoring reads. */
export interface ScoringOptions {
  criterion: string;
  combine: Combine;
  temperature?: number;
  bnTraining?: boolean;
  seed: number;
  log?: (line: string) => void;
}

/**
 * Scores the net's channels by the criterion, decides the widths (given, or by global allocation from the scores) and
 * chooses which channels each group keeps (indices into the net's own channels). The one scoring step `prune` and
 * pruning during training share.
 */
export async function chooseByCriterion(
  net: EngineNet,
  plan: WidthPlan,
  criterion: string,
  batches: EngineBatch[],
  opts: Omit<ScoringOptions, 'criterion'>,
): Promise<{ kept: KeptIndices; widths: WidthConfig; hessian?: string }> {
  const map = channelMap(net.spec);
  const scored = await scoreGroups(net, map, criterion, batches, {
    combine: opts.combine,
    seed: opts.seed,
    training: opts.bnTraining ?? false,
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
  });
  if (scored.hessian) opts.log?.(`H·g by ${scored.hessian}`);
  const widths = 'widths' in plan ? plan.widths : allocateGlobal(net.spec, net.widths, scored.scores, plan.global);
  const kept = chooseKept(map, scored.scores, net.widths, widths);
  return { kept, widths, ...(scored.hessian ? { hessian: scored.hessian } : {}) };
}

/** The provenance fields every pruned model records about how it was scored and how its widths were decided. */
export function scoringProvenance(
  req: { criterion: string; combine: Combine; scoreBatches: number; temperature?: number; allocation?: Allocation; minKeep?: number },
): Pick<PrunedProvenance, 'criterion' | 'combine' | 'allocation' | 'minKeep' | 'scoreBatches' | 'temperature'> {
  const weightsOnly = CRITERIA[req.criterion].needs === 'weights';
  const allocation = req.allocation ?? 'uniform';
  return {
    criterion: req.criterion,
    combine: req.combine,
    allocation,
    ...(allocation === 'global' ? { minKeep: req.minKeep ?? DEFAULT_MIN_KEEP } : {}),
    scoreBatches: weightsOnly ? 0 : req.scoreBatches,
    ...(weightsOnly ? {} : { temperature: scoringTemperature(req.criterion, req.temperature) }),
  };
}

/**
 * Saves a pruned net with its provenance under `pruned` in prunespace.json (the parent's complexity and the child's
 * are computed here). The one writer of pruned models, for `prune` and for pruning during training.
 */
export async function savePruned(
  net: EngineNet,
  outDir: string,
  pruned: Omit<PrunedProvenance, 'parentComplexity'> & Record<string, unknown>,
  rest: { metrics: SavedMetadata['metrics']; seed: number; settings: unknown },
): Promise<{ complexity: Complexity; parentComplexity: Complexity }> {
  const c = complexity(net.spec, net.widths);
  const parentComplexity = complexity(net.spec, pruned.parentWidths);
  const { parent, parentWidths, ...others } = pruned;
  await saveNet(net, outDir, {
    net: net.spec.ref,
    widths: net.widths,
    groups: net.spec.groups.map((g) => g.name),
    complexity: c,
    metrics: rest.metrics,
    seed: rest.seed,
    settings: rest.settings,
    savedAt: new Date().toISOString(),
    pruned: { parent, parentWidths, parentComplexity, ...others },
  });
  return { complexity: c, parentComplexity };
}

export async function prune(req: PruneRequest, log: (line: string) => void = () => {}): Promise<PruneResult> {
  const { parent, plan } = checkRequest(req);
  const { spec } = parent;
  const pw = parent.metadata.widths;
  const weights = await readParentWeights(parent);
  const criterion = CRITERIA[req.criterion];
  const needsData = criterion.needs !== 'weights' || req.settings.epochs > 0;
  const data = needsData ? loadPrepared(req.settings.data, spec) : undefined;
  const optimizer = { momentum: req.settings.momentum, nesterov: req.settings.nesterov, weightDecay: req.settings.weightDecay };
  const parentNet = await req.engine.build(spec, pw, req.seed, optimizer);
  let kept: KeptIndices;
  let widths: WidthConfig;
  let hessian: string | undefined;
  const metrics: Record<string, number | string | undefined> = { engine: req.engineName };
  try {
    await parentNet.writeWeights(weights);
    const batches = data ? scoringBatches(data, req.scoreBatches, req.settings.batchSize, req.seed) : [];
    ({ kept, widths, hessian } = await chooseByCriterion(parentNet, plan, req.criterion, batches, { ...req, log }));
    if ('global' in plan) log(`global allocation by ${req.criterion}: widths ${widths.join(',')}`);
    if (data) {
      const e = await evaluate(parentNet, data, data.test, 2 * req.settings.batchSize);
      metrics.parentTestError = e.error;
    }
  } finally {
    parentNet.dispose();
  }
  const child = sliceWeights(spec, pw, weights, kept);
  const net = await req.engine.build(spec, widths, req.seed, optimizer);
  if (net.memoryFormat) metrics.memoryFormat = net.memoryFormat();
  try {
    await net.writeWeights(child.weights);
    if (data) {
      const before = await evaluate(net, data, data.test, 2 * req.settings.batchSize);
      metrics.prunedTestError = before.error;
      metrics.prunedRecalibratedTestError = await recalibratedTestError(net, data, req.settings.batchSize, req.seed);
      log(`test error: parent ${pct(metrics.parentTestError as number)}, pruned before fine-tuning ${pct(before.error)} (BN re-estimated on ${DEFAULT_PRECISE_BN} batches: ${pct(metrics.prunedRecalibratedTestError)})`);
    }
    if (data && req.settings.epochs > 0) {
      const outcome = await train(net, data, { ...req.settings, augment: req.settings.data.augment }, req.seed, (c) =>
        log(`fine-tune epoch ${c.epoch}/${req.settings.epochs}  train loss ${c.trainLoss.toFixed(4)}  val err ${pct(c.valError)}`),
      );
      if (outcome.status === 'failed') throw new UserError(`fine-tuning failed: ${outcome.error}`);
      Object.assign(metrics, { valError: outcome.valError, testError: outcome.testError, trainLoss: outcome.trainLoss, epochs: outcome.curves.length, steps: outcome.steps });
      log(`test error after ${req.settings.epochs} epochs of fine-tuning ${pct(outcome.testError!)}`);
    }
    const saved = await savePruned(net, req.outDir, {
      parent: parent.dir,
      parentWidths: pw,
      ...scoringProvenance(req),
      ...(hessian ? { hessian } : {}),
      kept,
      fineTuneEpochs: req.settings.epochs,
    }, { metrics, seed: req.seed, settings: req.settings });
    return { widths, kept, complexity: saved.complexity, parentComplexity: saved.parentComplexity, ...(hessian ? { hessian } : {}), metrics };
  } finally {
    net.dispose();
  }
}

/**
 * The net's test error with its BN statistics re-estimated at its current weights (DEFAULT_PRECISE_BN training
 * batches). With the parent's statistics a pruned net can sit near chance whatever the criterion kept; re-estimated,
 * the error shows what pruning kept. The net's own statistics come back afterwards, so fine-tuning starts where it
 * always did.
 */
export async function recalibratedTestError(net: EngineNet, data: PreparedData, batchSize: number, seed: number): Promise<number> {
  const inherited = await net.readWeights();
  await recalibrateBn(net, net.spec, preciseBnBatches(data, DEFAULT_PRECISE_BN, batchSize, seed));
  const { error } = await evaluate(net, data, data.test, 2 * batchSize);
  await net.writeWeights(inherited);
  return error;
}

/** Loads the data and checks that it fits the network's input and classes. */
export function loadPrepared(settings: DataSettings, spec: NetSpec): PreparedData {
  const data = loadData(settings, { shape: spec.ref.input, classes: spec.ref.classes });
  if (data.shape.join('x') !== spec.ref.input.join('x') || data.classes !== spec.ref.classes) {
    throw new UserError(`${data.name} (${data.shape.join('x')}, ${data.classes} classes) does not fit the parent's input ${spec.ref.input.join('x')}, ${spec.ref.classes} classes`);
  }
  return data;
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
