/**
 * A campaign trial in label-free mode: the sampled widths are the sparsity target of distilling a saved parent;
 * the materialised subnetwork is evaluated (labels read for evaluation only) and optionally saved.
 */
import { complexity } from '../../complexity/count.js';
import { checkWidths } from '../../nets/resolve.js';
import { normaliser } from '../../training/data/batch.js';
import { loadData } from '../../training/data/load.js';
import { startBackend } from '../../training/trial.js';
import { evaluate } from '../../training/train.js';
import type { DistillTrialOptions, EpochCurve, TrialRequest, TrialResult } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { distill, teacherAgreement, type DistillSettings } from './distill.js';
import { DEFAULT_WEIGHTS } from './losses.js';
import { loadParent } from './parent.js';
import { materialise, saveMaterialised } from './save.js';

/** Defaults of a campaign's label-free trials where the campaign leaves a setting out: distill's own defaults. */
export const DISTILL_TRIAL_DEFAULTS = { reselectEvery: 100, sensitivityBatches: 4, bnBatches: 16 };

/** The distillation weights and schedule of a trial: the campaign's options over distill's defaults. */
export function distillTrialSettings(o: DistillTrialOptions = {}): Pick<DistillSettings, 'weights' | 'reselectEvery' | 'sensitivityBatches' | 'bnBatches'> {
  return {
    weights: {
      logits: o.lambdaLogits ?? DEFAULT_WEIGHTS.logits,
      features: o.lambdaFeatures ?? DEFAULT_WEIGHTS.features,
      mutual: o.lambdaMutual ?? DEFAULT_WEIGHTS.mutual,
      sparsity: o.lambdaSparsity ?? DEFAULT_WEIGHTS.sparsity,
      temperature: o.temperature ?? DEFAULT_WEIGHTS.temperature,
    },
    reselectEvery: o.reselectEvery ?? DISTILL_TRIAL_DEFAULTS.reselectEvery,
    sensitivityBatches: o.sensitivityBatches ?? DISTILL_TRIAL_DEFAULTS.sensitivityBatches,
    bnBatches: o.bnBatches ?? DISTILL_TRIAL_DEFAULTS.bnBatches,
  };
}

/** Distils the parent of req.init (mode 'distill') to req.widths; curves carry the best student's loss (train) and label-free validation loss. */
export async function runDistillTrial(req: TrialRequest, onEpoch?: (c: EpochCurve) => void): Promise<TrialResult> {
  const init = req.init;
  if (init?.mode !== 'distill') throw new Error("runDistillTrial needs a request with init mode 'distill'");
  const started = performance.now();
  const backend = await startBackend(req.settings.backend, req.settings.threads);
  const parent = await loadParent(init.parent);
  const { spec } = parent;
  if (spec.ref.family !== req.net.family) throw new UserError(`--parent is a ${spec.ref.family}, the space samples ${req.net.family}`);
  checkWidths(spec, req.widths);
  req.widths.forEach((w, g) => {
    if (w > parent.widths[g]) throw new UserError(`width ${w} of group ${spec.groups[g].name} exceeds the parent's ${parent.widths[g]}`);
  });
  const data = loadData(req.settings.data, { shape: spec.ref.input, classes: spec.ref.classes });
  const s = req.settings;
  const settings: DistillSettings = {
    students: init.students ?? 2,
    epochs: s.epochs,
    ...(s.steps ? { steps: s.steps } : {}),
    batchSize: s.batchSize,
    lr: s.lr,
    optimizer: { momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weightDecay },
    ...distillTrialSettings(init.options),
    target: { widths: req.widths },
    augment: s.data.augment,
  };
  const wall = (): number => (performance.now() - started) / 1000;
  const curves: EpochCurve[] = [];
  const out = await distill(backend.selected.engine, parent, data, settings, req.seed, (e) => {
    const best = e.students.reduce((b, st, i) => (st.valDistill < e.students[b].valDistill ? i : b), 0);
    const c: EpochCurve = { epoch: e.epoch, trainLoss: e.students[best].loss, trainError: NaN, valLoss: e.students[best].valDistill, valError: NaN, lr: s.lr, seconds: e.seconds };
    curves.push(c);
    onEpoch?.(c);
  });
  if (out.status === 'failed') return { status: 'failed', error: out.error, curves, wallSeconds: wall(), backend: backend.name };
  const m = materialise(spec, parent.widths, out.weights!, out.kept!);
  const net = await backend.selected.engine.build(spec, m.widths, req.seed, settings.optimizer);
  const teacher = await backend.selected.engine.build(spec, parent.widths, req.seed, settings.optimizer);
  try {
    await net.writeWeights(m.weights);
    await teacher.writeWeights(parent.weights);
    // Label-free metrics of the subnetwork as saved; which one is the trial's validation error is the campaign's choice.
    const agree = await teacherAgreement(teacher, net, data, 2 * s.batchSize, normaliser(data), settings.weights.temperature, spec.ref.classes);
    const val = await evaluate(net, data, data.val, 2 * s.batchSize);
    const test = await evaluate(net, data, data.test, 2 * s.batchSize);
    if (req.saveDir) {
      await saveMaterialised(spec, m, req.saveDir, {
        method: 'distill',
        parent: { dir: init.parent, widths: parent.widths },
        kept: out.kept!,
        metrics: { valDistill: out.valDistill, valDisagreement: agree.disagreement, valError: val.error, testError: test.error, steps: out.steps, backend: backend.name, flops: complexity(spec, m.widths).flops },
        seed: req.seed,
        settings,
      });
    }
    // New campaigns always name their choice (default agreement); jobs of campaigns stored before it ranked on labels.
    const rankOn = init.rankOn ?? 'labels';
    const ranked = rankOn === 'labels' ? val.error : rankOn === 'distill-loss' ? agree.kl : agree.disagreement;
    return {
      status: 'complete',
      valError: ranked,
      valLoss: out.valDistill,
      testError: test.error,
      testLoss: test.loss,
      trainLoss: curves[curves.length - 1]?.trainLoss,
      steps: out.steps,
      curves,
      wallSeconds: wall(),
      backend: backend.name,
      metrics: { rankedOn: rankOn, valErrorLabelled: val.error, valDisagreement: agree.disagreement, valDistill: agree.kl, widths: m.widths },
    };
  } finally {
    net.dispose();
    teacher.dispose();
  }
}
