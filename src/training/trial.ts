/** One trial, end to end: build the subnetwork, load data (cached per process), train, optionally save; plain data out. */
import { complexity } from '../complexity/count.js';
import { buildNet } from '../nets/registry.js';
import { checkWidths } from '../nets/resolve.js';
import { UserError, isUserError } from '../util/errors.js';
import { loadData } from './data/load.js';
import type { EngineNet } from './engine.js';
import { selectEngine, type SelectedEngine } from './engines/select.js';
import { inheritedWeights } from './inherit.js';
import { saveNet } from './save.js';
import { rungStopSteps, runLength, train, type StepEvaluation, type StepProgress } from './train.js';
import { captureCheckpoint, loadCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { join } from 'node:path';
import { CurvePointRecorder } from './curve-points.js';
import type { EpochCurve, LowerRungResult, TrainSettings, TrialRequest, TrialResult } from './types.js';

/**
 * Starts the requested engine ('auto': torch on CUDA, then torch on CPU, then native TensorFlow, then wasm with our
 * training kernels, then cpu) and says which and why. Cached per process, so every trial after the first pays nothing.
 */
export async function startBackend(name: TrainSettings['backend'], threads?: number): Promise<{ name: string; reason: string; selected: SelectedEngine }> {
  const selected = await selectEngine(name, { threads });
  return { name: selected.engine.name, reason: selected.reason, selected };
}

/** Checks settings that commander cannot: ranges that make a run meaningless. */
export function checkSettings(s: TrainSettings): void {
  const need = (ok: boolean, what: string): void => {
    if (!ok) throw new UserError(what);
  };
  need(Number.isInteger(s.epochs) && s.epochs >= 1, `epochs must be an integer >= 1, got ${s.epochs}`);
  need(s.steps === undefined || (Number.isInteger(s.steps) && s.steps >= 1), `steps must be an integer >= 1, got ${s.steps}`);
  need(Number.isInteger(s.batchSize) && s.batchSize >= 1, `batch size must be an integer >= 1, got ${s.batchSize}`);
  need(s.lr > 0 && Number.isFinite(s.lr), `learning rate must be a positive number, got ${s.lr}`);
  need(s.momentum >= 0 && s.momentum < 1, `momentum must be in [0, 1), got ${s.momentum}`);
  need(s.weightDecay >= 0 && Number.isFinite(s.weightDecay), `weight decay must be >= 0, got ${s.weightDecay}`);
  need(s.warmupEpochs >= 0 && Number.isFinite(s.warmupEpochs), `warmup must be >= 0 epochs, got ${s.warmupEpochs}`);
  need(s.labelSmoothing >= 0 && s.labelSmoothing < 1, `label smoothing must be in [0, 1), got ${s.labelSmoothing}`);
}

/** Where a rung starts and stops, which checkpoint it resumes and which it leaves; a rung of no step is bad input. */
function rungSpan(r: NonNullable<TrialRequest['rung']>, totalSteps: number) {
  const stops = rungStopSteps(totalSteps, r.rungs, r.eta);
  const startStep = r.rung > 0 ? stops[r.rung - 1] : 0;
  const stopStep = stops[r.rung];
  if (!(stopStep > startStep)) {
    throw new UserError(`rung ${r.rung} of ${r.rungs} (eta ${r.eta}) would train no step: the run has ${totalSteps} steps; lower --rungs or --eta, or raise --epochs`);
  }
  return {
    startStep,
    stopStep,
    resumeFrom: r.rung > 0 ? rungCheckpoint(r.checkpoints, r.rung - 1) : undefined,
    saveTo: r.rung < r.rungs - 1 ? rungCheckpoint(r.checkpoints, r.rung) : undefined,
  };
}

/** The checkpoint a trial leaves at the end of rung `rung`: one per rung, so a rerun of rung r+1 still finds rung r's. */
export function rungCheckpoint(checkpoints: string, rung: number): string {
  return join(checkpoints, `rung-${rung}`);
}

/** The evaluations at the lower rungs' stop steps as rung results; a stop no step reaches (rung of no step) has none. */
function lowerRungResults(stops: number[], evaluations: StepEvaluation[]): LowerRungResult[] {
  let imagesBefore = 0;
  return stops.flatMap((stop, rung) => {
    const e = evaluations.find((x) => x.step === stop);
    if (!e) return [];
    const images = e.images - imagesBefore;
    imagesBefore = e.images;
    return [{ rung, epochs: e.epochs, valError: e.valError, testError: e.testError, trainLoss: e.trainLoss, images }];
  });
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name === 'Error' ? '' : e.name + ': '}${e.message}`.split('\n')[0];
  return String(e);
}

/**
 * Trains one candidate. Throws UserError for bad input (unknown net, widths that do not fit, data that does not
 * load or does not match the net); every failure during training comes back as status 'failed' with its reason.
 */
export async function runTrial(req: TrialRequest, onEpoch?: (c: EpochCurve) => void, onStep?: (p: StepProgress) => void): Promise<TrialResult> {
  // Training never imports pruning: an executor sends label-free trials to src/pruning/distill/trial.ts instead.
  if (req.init?.mode === 'distill') throw new Error('a distill trial runs through runDistillTrial, not runTrial');
  const started = performance.now();
  const spec = buildNet(req.net);
  checkWidths(spec, req.widths);
  checkSettings(req.settings);
  const backend = await startBackend(req.settings.backend, req.settings.threads);
  const data = loadData(req.settings.data, { shape: spec.ref.input, classes: spec.ref.classes });
  if (data.shape.join('x') !== spec.ref.input.join('x')) {
    throw new UserError(`${data.name} images are ${data.shape.join('x')} but the net's input is ${spec.ref.input.join('x')}; pass --input ${data.shape.join('x')}`);
  }
  if (data.classes !== spec.ref.classes) {
    throw new UserError(`${data.name} has ${data.classes} classes but the net has ${spec.ref.classes}; pass --classes ${data.classes}`);
  }
  const wall = (): number => (performance.now() - started) / 1000;
  let net: EngineNet | undefined;
  try {
    net = await backend.selected.engine.build(spec, req.widths, req.seed, {
      momentum: req.settings.momentum,
      nesterov: req.settings.nesterov,
      weightDecay: req.settings.weightDecay,
    });
    const layout = net.memoryFormat ? { memoryFormat: net.memoryFormat() } : {};
    const { totalSteps } = runLength(req.settings, data.train.indices.length);
    const segment = req.rung ? rungSpan(req.rung, totalSteps) : undefined;
    const lowerStops = req.evalRungs && !req.rung ? rungStopSteps(totalSteps, req.evalRungs.rungs, req.evalRungs.eta).slice(0, -1) : [];
    if (segment?.resumeFrom) await restoreCheckpoint(net, loadCheckpoint(segment.resumeFrom));
    else if (req.init?.mode === 'inherit') await net.writeWeights(await inheritedWeights(spec, req.widths, req.init.parent, req.init.kept));
    // Every trial records a few points per epoch, so the report can draw curves of one-epoch trials.
    const recorder = new CurvePointRecorder();
    const outcome = await train(
      net, data, { ...req.settings, augment: req.settings.data.augment, startStep: segment?.startStep, stopStep: segment?.stopStep, evalAt: lowerStops }, req.seed,
      (curve) => {
        curve.points = recorder.take(curve.epoch);
        onEpoch?.(curve);
      },
      (p) => {
        recorder.onStep(p);
        onStep?.(p);
      },
    );
    if (outcome.status === 'complete' && segment?.saveTo) saveCheckpoint(segment.saveTo, await captureCheckpoint(net, outcome.steps));
    // A rung below the top is not the trained subnetwork yet: only the top rung saves the model.
    if (outcome.status === 'complete' && req.saveDir && !segment?.saveTo) {
      await saveNet(net, req.saveDir, {
        net: spec.ref,
        widths: req.widths,
        groups: spec.groups.map((g) => g.name),
        complexity: complexity(spec, req.widths),
        metrics: {
          valError: outcome.valError,
          testError: outcome.testError,
          trainLoss: outcome.trainLoss,
          epochs: outcome.curves.length,
          steps: outcome.steps,
          backend: backend.name,
          ...layout,
        },
        seed: req.seed,
        settings: req.settings,
        savedAt: new Date().toISOString(),
        // An inherited trial is a pruned parent, fine-tuned: its provenance says which channels it kept.
        ...(req.init?.mode === 'inherit' ? { pruned: { parent: req.init.parent, criterion: req.init.criterion, kept: req.init.kept, fineTuneEpochs: outcome.curves.length } } : {}),
      });
    }
    return {
      status: outcome.status,
      ...(outcome.error ? { error: outcome.error } : {}),
      valError: outcome.valError,
      valLoss: outcome.valLoss,
      testError: outcome.testError,
      testLoss: outcome.testLoss,
      trainLoss: outcome.trainLoss,
      steps: outcome.steps,
      images: outcome.images,
      epochs: outcome.epochs,
      curves: outcome.curves,
      wallSeconds: wall(),
      imagesPerSecond: outcome.imagesPerSecond,
      backend: backend.name,
      ...layout,
      ...(outcome.status === 'complete' && lowerStops.length ? { lowerRungs: lowerRungResults(lowerStops, outcome.evaluations ?? []) } : {}),
    };
  } catch (e) {
    if (isUserError(e)) throw e;
    return { status: 'failed', error: errorText(e), curves: [], wallSeconds: wall(), backend: backend.name };
  } finally {
    net?.dispose();
  }
}
