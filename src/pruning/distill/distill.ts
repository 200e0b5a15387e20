/**
 * Label-free compression: a frozen teacher guides N students (copies of it) through its logits and stage features,
 * the students learn from each other, and a dynamic structured-sparsity penalty, on channels chosen at intervals by
 * Taylor sensitivity to meet a FLOPs target or pruning rate, drives those channels' BN scale and shift to zero by
 * ISTA. No label is read: batches reach the engines without labels.
 */
import { compileComplexity } from '../../complexity/terms.js';
import type { NetSpec, WidthConfig } from '../../nets/types.js';
import { makeBatch, normaliser } from '../../training/data/batch.js';
import { permutation } from '../../training/data/prepare.js';
import type { PreparedData, Split } from '../../training/data/types.js';
import type { Engine, EngineBatch, EngineNet, OptimizerSettings, WeightSet } from '../../training/engine.js';
import { UserError } from '../../util/errors.js';
import { makeRng } from '../../util/rng.js';
import { recalibrateBn } from '../../training/bn-stats.js';
import { bnByGroup, orderKept, removableRule, stageTaps, zeroPadCouplings } from './channels.js';
import { softKl, softmaxRows, studentLoss, type DistillWeights, type LossParts } from './losses.js';
import { checkTarget, selectChannels, type Selection, type SparsityTarget } from './select.js';
import { channelNorms, softThreshold, taylorSensitivity } from './sparsity.js';

export interface DistillSettings {
  /** N >= 1 students. */
  students: number;
  epochs: number;
  /** Optional step budget (ends at whichever of epochs or steps comes first). */
  steps?: number;
  batchSize: number;
  /**
   * Constant learning rate: the ISTA threshold per step is lr·λs, and a schedule decaying to zero would stop the
   * sparsity before the chosen channels reach zero.
   */
  lr: number;
  optimizer: OptimizerSettings;
  weights: DistillWeights;
  target: SparsityTarget;
  /** Steps between re-selections of the channels to sparsify. */
  reselectEvery: number;
  /** Batches whose Taylor sensitivities are summed at each selection. */
  sensitivityBatches: number;
  /** Batches used to re-estimate BN statistics before inference-mode use. */
  bnBatches: number;
  /** Validation batches of the label-free validation loss (default: all of the validation split). */
  valBatches?: number;
  augment?: boolean;
}

/** One student's state after an epoch. */
export interface StudentEpoch {
  /** Mean weighted loss of the epoch and its parts before weighting. */
  loss: number;
  parts: LossParts;
  /** Per group: channels chosen for sparsity, and channels whose BN scale and shift are exactly zero. */
  chosen: number[];
  zero: number[];
  /** FLOPs once the chosen channels are removed. */
  projectedFlops: number;
  /** The sparsity weight λs in use. */
  lambdaS: number;
  /** T²-scaled KL to the teacher on the validation split, inference mode (label-free). */
  valDistill: number;
}

export interface DistillEpoch {
  epoch: number;
  students: StudentEpoch[];
  seconds: number;
}

/**
 * The final projection of the best student: chosen channels whose (γ, β) were still non-zero when it set them to zero
 * (live, of chosen), against the median norm of the channels it kept. Many live channels with norms near the kept
 * ones mean the penalty lost to the distillation gradients and the projection cut channels the network still used.
 */
export interface Projection {
  live: number;
  chosen: number;
  keptMedianNorm: number;
}

export interface DistillOutcome {
  status: 'complete' | 'failed';
  error?: string;
  curves: DistillEpoch[];
  steps: number;
  /** The student with the lowest validation distillation loss after the final projection. */
  best?: number;
  /** Its weights at full width, removed channels at exactly zero, BN statistics re-estimated. */
  weights?: WeightSet;
  /** Per group, the channel indices it keeps (ascending), and the resulting widths and FLOPs. */
  kept?: number[][];
  widths?: WidthConfig;
  flops?: number;
  /** Largest norm of a chosen channel's (γ, β) set to zero by the final projection rather than by ISTA. */
  projected?: number;
  /** How much of the removal the projection did rather than the sparsity penalty (see Projection). */
  projection?: Projection;
  valDistill?: number;
  /** The students' memory format, where the engine has a choice (EngineNet.memoryFormat). */
  memoryFormat?: string;
}

/** The teacher's network, widths and trained weights (tfjs layout). */
export interface Parent {
  spec: NetSpec;
  widths: WidthConfig;
  weights: WeightSet;
}

const unlabelled = (b: { x: Float32Array; size: number }): EngineBatch => ({ x: b.x, size: b.size });

/** Inference-mode batches of a split, without labels. */
function splitBatches(data: PreparedData, split: Split, batchSize: number, lut: Float32Array, limit = Infinity): EngineBatch[] {
  const out: EngineBatch[] = [];
  const n = split.indices.length;
  for (let start = 0; start < n && out.length < limit; start += batchSize) {
    const positions = Int32Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    out.push(unlabelled(makeBatch(data, split, positions, lut)));
  }
  return out;
}

/** Checks settings that make a run meaningless; the target is checked against the network separately. */
export function checkDistillSettings(s: DistillSettings): void {
  const need = (ok: boolean, what: string): void => {
    if (!ok) throw new UserError(what);
  };
  need(Number.isInteger(s.students) && s.students >= 1, `students must be an integer >= 1, got ${s.students}`);
  need(Number.isInteger(s.epochs) && s.epochs >= 1, `epochs must be an integer >= 1, got ${s.epochs}`);
  need(Number.isInteger(s.batchSize) && s.batchSize >= 1, `batch size must be an integer >= 1, got ${s.batchSize}`);
  need(s.lr > 0 && Number.isFinite(s.lr), `learning rate must be a positive number, got ${s.lr}`);
  need(Number.isInteger(s.reselectEvery) && s.reselectEvery >= 1, `re-selection interval must be an integer >= 1, got ${s.reselectEvery}`);
  for (const [k, v] of Object.entries(s.weights)) {
    if (k === 'sparsity' && v === 'auto') continue;
    need(typeof v === 'number' && v >= 0 && Number.isFinite(v), `loss weight ${k} must be a finite number >= 0, got ${v}`);
  }
  need(s.weights.temperature > 0, `temperature must be > 0, got ${s.weights.temperature}`);
}

/** Runs label-free distillation with dynamic sparsity; never throws for a diverging run (status 'failed'). */
export async function distill(
  engine: Engine,
  parent: Parent,
  data: PreparedData,
  s: DistillSettings,
  seed: number,
  onEpoch?: (e: DistillEpoch) => void,
): Promise<DistillOutcome> {
  checkDistillSettings(s);
  const { spec, widths } = parent;
  const model = compileComplexity(spec);
  checkTarget(spec, widths, model, s.target);
  const bns = bnByGroup(spec);
  const stages = stageTaps(spec);
  const couplings = zeroPadCouplings(spec);
  const removable = removableRule(couplings, widths);
  const taps = stages.map((t) => t.tap);
  const classes = spec.ref.classes;
  const lut = normaliser(data);
  const nTrain = data.train.indices.length;
  const batchSize = Math.min(s.batchSize, nTrain);
  const stepsPerEpoch = Math.floor(nTrain / batchSize);
  const totalSteps = Math.min(s.epochs * stepsPerEpoch, s.steps ?? Infinity);
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  // λs per student: fixed, or set at its first selection ('auto', see DEFAULT_WEIGHTS).
  const lambdaS: number[] = new Array(s.students).fill(s.weights.sparsity === 'auto' ? NaN : s.weights.sparsity);

  const nets: EngineNet[] = [];
  const build = async (): Promise<EngineNet> => {
    const net = await engine.build(spec, widths, seed, s.optimizer);
    nets.push(net);
    await net.writeWeights(parent.weights);
    return net;
  };
  try {
    const teacher = await build();
    const students: EngineNet[] = [];
    for (let i = 0; i < s.students; i++) students.push(await build());
    // Batches for sensitivity and BN statistics come from their own seeded stream, so they never shift the data order.
    const sideRng = makeRng(seed, 'distill/side');
    const sideBatches = (count: number): EngineBatch[] => {
      const order = permutation(nTrain, sideRng);
      return Array.from({ length: Math.min(count, stepsPerEpoch) }, (_, b) =>
        unlabelled(makeBatch(data, data.train, order.subarray(b * batchSize, (b + 1) * batchSize), lut)),
      );
    };

    // A teacher whose weights give non-finite outputs is bad input, not a diverging run.
    const probe = await teacher.forward(sideBatches(1)[0], { training: false });
    if (!probe.logits.every(Number.isFinite)) throw new UserError('the parent gives non-finite logits on the first training batch: its weights are unusable');

    const selections: Selection[] = new Array(s.students);
    const select = async (i: number): Promise<void> => {
      const weights = await students[i].readWeights();
      const scores = widths.map((w) => new Float64Array(w));
      for (const batch of sideBatches(s.sensitivityBatches)) {
        const t = await teacher.forward(batch, { training: false });
        const pseudo = argmaxRows(t.logits, classes);
        // Sensitivity to the teacher's predicted class: KD against the teacher has zero gradient while the student
        // still equals it, whereas this label-free loss ranks channels from the first step on.
        const { grads } = await students[i].gradients(batch, { kind: 'outputs', fn: (out) => pseudoLabelLoss(out.logits, pseudo, classes) });
        bns.forEach((g, k) => {
          const t2 = taylorSensitivity(weights, grads, g, widths[k]);
          for (let c = 0; c < t2.length; c++) scores[k][c] += t2[c];
        });
      }
      selections[i] = selectChannels(spec, widths, model, scores, s.target, removable);
      if (Number.isNaN(lambdaS[i])) {
        const norms = bns.flatMap((g, k) => {
          const n = channelNorms(weights, g, widths[k]);
          return selections[i].chosen[k].map((c) => n[c]);
        });
        const mean = norms.length ? norms.reduce((a, b) => a + b, 0) / norms.length : 0;
        lambdaS[i] = mean / (s.lr * Math.max(1, Math.round(totalSteps / 2)));
      }
    };

    const curves: DistillEpoch[] = [];
    let step = 0;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const started = performance.now();
      const order = permutation(nTrain, makeRng(seed, `order/${epoch}`));
      const augmentRng = s.augment === false ? undefined : makeRng(seed, `augment/${epoch}`);
      const sums = students.map(() => ({ loss: 0, logits: 0, features: 0, mutual: 0, n: 0 }));
      for (let b = 0; b < stepsPerEpoch && step < totalSteps; b++, step++) {
        if (step % s.reselectEvery === 0) for (let i = 0; i < s.students; i++) await select(i);
        const batch = unlabelled(makeBatch(data, data.train, order.subarray(b * batchSize, (b + 1) * batchSize), lut, augmentRng));
        const t = await teacher.forward(batch, { training: false, taps });
        // Peers' predictions on this batch before anyone updates: each student's mutual term treats them as constants.
        const peers = s.students > 1 ? await Promise.all(students.map(async (n) => (await n.forward(batch, { training: true })).logits)) : [];
        for (let i = 0; i < s.students; i++) {
          const masks = stages.map((st) => {
            const m = new Array<boolean>(widths[st.group]).fill(false);
            for (const c of selections[i].chosen[st.group]) m[c] = true;
            return m;
          });
          let parts: LossParts | undefined;
          const { loss, grads } = await students[i].gradients(batch, {
            kind: 'outputs',
            taps,
            fn: (out) => {
              const r = studentLoss(
                {
                  logits: out.logits,
                  taps: out.taps,
                  teacherLogits: t.logits,
                  teacherTaps: t.taps,
                  peerLogits: peers.filter((_, j) => j !== i),
                  stages: stages.map((st, k) => ({ tap: st.tap, channels: widths[st.group], mask: masks[k] })),
                  classes,
                },
                s.weights,
              );
              parts = r.parts;
              return { loss: r.loss, dLogits: r.dLogits, dTaps: r.dTaps };
            },
          });
          if (!Number.isFinite(loss) || ![...grads.values()].every((g) => g.data.every(Number.isFinite))) {
            return {
              status: 'failed',
              error: `distillation loss of student ${i + 1} became ${Number.isNaN(loss) ? 'NaN' : Number.isFinite(loss) ? 'finite with non-finite gradients' : 'infinite'} at epoch ${epoch}, step ${step + 1}`,
              curves,
              steps: step + 1,
            };
          }
          await students[i].applyGradients(grads, s.lr);
          // ISTA: the proximal step of the sparsity term right after the gradient step, on the chosen channels only.
          const after = await students[i].readWeights();
          const update: WeightSet = new Map();
          bns.forEach((g, k) => {
            if (selections[i].chosen[k].length) for (const [n, w] of softThreshold(after, g, selections[i].chosen[k], s.lr * lambdaS[i])) update.set(n, w);
          });
          if (update.size) await students[i].writeWeights(update);
          const acc = sums[i];
          acc.loss += loss;
          acc.logits += parts!.logits;
          acc.features += parts!.features;
          acc.mutual += parts!.mutual;
          acc.n++;
        }
      }
      const report: StudentEpoch[] = [];
      for (let i = 0; i < s.students; i++) {
        await recalibrateBn(students[i], spec, sideBatches(s.bnBatches));
        const weights = await students[i].readWeights();
        const acc = sums[i];
        report.push({
          loss: acc.loss / acc.n,
          parts: { logits: acc.logits / acc.n, features: acc.features / acc.n, mutual: acc.mutual / acc.n },
          chosen: selections[i].chosen.map((c) => c.length),
          zero: bns.map((g, k) => channelNorms(weights, g, widths[k]).filter((x) => x === 0).length),
          projectedFlops: selections[i].flops,
          lambdaS: lambdaS[i],
          valDistill: (await teacherAgreement(teacher, students[i], data, batchSize, lut, s.weights.temperature, classes, s.valBatches)).kl,
        });
      }
      const curve = { epoch, students: report, seconds: (performance.now() - started) / 1000 };
      curves.push(curve);
      onEpoch?.(curve);
    }

    // Final projection: the channels chosen last are set exactly to zero (most already are), then removed.
    const finals: { weights: WeightSet; kept: number[][]; projected: number; projection: Projection; val: number }[] = [];
    for (let i = 0; i < s.students; i++) {
      const w = await students[i].readWeights();
      let projected = 0;
      const projection: Projection = { live: 0, chosen: 0, keptMedianNorm: 0 };
      const keptNorms: number[] = [];
      const update: WeightSet = new Map();
      bns.forEach((g, k) => {
        const chosen = selections[i].chosen[k];
        const norms = channelNorms(w, g, widths[k]);
        const isChosen = new Set(chosen);
        for (let c = 0; c < norms.length; c++) if (!isChosen.has(c)) keptNorms.push(norms[c]);
        if (!chosen.length) return;
        projection.chosen += chosen.length;
        for (const c of chosen) {
          projected = Math.max(projected, norms[c]);
          if (norms[c] > 0) projection.live++;
        }
        for (const [n, t] of softThreshold(w, g, chosen, Infinity)) update.set(n, t);
      });
      keptNorms.sort((a, b) => a - b);
      projection.keptMedianNorm = keptNorms.length ? keptNorms[Math.floor(keptNorms.length / 2)] : 0;
      if (update.size) await students[i].writeWeights(update);
      await recalibrateBn(students[i], spec, sideBatches(s.bnBatches));
      const weights = await students[i].readWeights();
      const kept = keptChannels(weights, bns, widths, removable, couplings);
      finals.push({ weights, kept, projected, projection, val: (await teacherAgreement(teacher, students[i], data, batchSize, lut, s.weights.temperature, classes, s.valBatches)).kl });
    }
    const best = finals.reduce((bi, f, i) => (f.val < finals[bi].val ? i : bi), 0);
    const f = finals[best];
    const keptWidths = f.kept.map((k) => k.length);
    return {
      status: 'complete',
      curves,
      steps: step,
      best,
      weights: f.weights,
      kept: f.kept,
      widths: keptWidths,
      flops: model.evaluate(keptWidths).flops,
      projected: f.projected,
      projection: f.projection,
      valDistill: f.val,
      ...(students[best].memoryFormat ? { memoryFormat: students[best].memoryFormat!() } : {}),
    };
  } finally {
    for (const n of nets) n.dispose();
  }
}

/**
 * The channels that still carry a signal: a channel goes when its BN scale and shift are zero in every BN of its
 * group and, across a zero-pad shortcut, its source channel went too. Every group keeps one channel. Ordered for
 * exact slicing across shortcuts.
 */
export function keptChannels(
  weights: WeightSet,
  bns: string[][],
  widths: WidthConfig,
  removable: (g: number, c: number, gone: Set<number>[]) => boolean,
  couplings: Parameters<typeof orderKept>[0],
): number[][] {
  const silent = bns.map((g, k) => {
    const norms = channelNorms(weights, g, widths[k]);
    return new Set([...norms.keys()].filter((c) => norms[c] === 0));
  });
  const gone = silent.map((x) => new Set(x));
  // Drop channels that a shortcut still feeds until nothing changes (chains of shortcuts settle in a few passes).
  for (let changed = true; changed; ) {
    changed = false;
    gone.forEach((set, g) => {
      for (const c of set) {
        if (!removable(g, c, gone)) {
          set.delete(c);
          changed = true;
        }
      }
    });
  }
  const kept = widths.map((w, g) => {
    const alive = Array.from({ length: w }, (_, c) => c).filter((c) => !gone[g].has(c));
    return alive.length ? alive : [0];
  });
  return orderKept(couplings, kept);
}

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const out = new Int32Array(logits.length / classes);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[r * classes + k] > logits[r * classes + best]) best = k;
    out[r] = best;
  }
  return out;
}

/** Mean cross-entropy of the logits against given classes (the teacher's predictions), with its logit gradient. */
function pseudoLabelLoss(logits: Float32Array, classesOf: Int32Array, classes: number): { loss: number; dLogits: Float32Array } {
  const p = softmaxRows(logits, classes, 1);
  const batch = classesOf.length;
  const dLogits = new Float32Array(logits.length);
  let loss = 0;
  for (let r = 0; r < batch; r++) {
    loss -= Math.log(Math.max(p[r * classes + classesOf[r]], 1e-30)) / batch;
    for (let k = 0; k < classes; k++) dLogits[r * classes + k] = (p[r * classes + k] - (k === classesOf[r] ? 1 : 0)) / batch;
  }
  return { loss, dLogits };
}

/**
 * Label-free comparison of a student with its teacher over the validation split, both in inference mode: the
 * T²-scaled KL, and the share of images whose predicted class differs from the teacher's (an error rate whose
 * "labels" are the teacher's predictions).
 */
export async function teacherAgreement(
  teacher: EngineNet,
  student: EngineNet,
  data: PreparedData,
  batchSize: number,
  lut: Float32Array,
  temperature: number,
  classes: number,
  limit = Infinity,
): Promise<{ kl: number; disagreement: number }> {
  let sum = 0;
  let differ = 0;
  let n = 0;
  const argmax = (z: Float32Array, r: number): number => {
    let best = 0;
    for (let k = 1; k < classes; k++) if (z[r * classes + k] > z[r * classes + best]) best = k;
    return best;
  };
  for (const batch of splitBatches(data, data.val, batchSize, lut, limit)) {
    const t = await teacher.forward(batch, { training: false });
    const st = await student.forward(batch, { training: false });
    sum += softKl(st.logits, t.logits, classes, temperature).loss * batch.size;
    for (let r = 0; r < batch.size; r++) if (argmax(st.logits, r) !== argmax(t.logits, r)) differ++;
    n += batch.size;
  }
  return n ? { kl: sum / n, disagreement: differ / n } : { kl: NaN, disagreement: NaN };
}
