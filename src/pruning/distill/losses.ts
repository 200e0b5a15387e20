/**
 * Label-free distillation losses over plain arrays, each with its gradient: logit distillation from the teacher,
 * mutual learning between students, masked feature matching at stage outputs. Teachers and peers are constants here.
 */

/** Softmax of logits / T, row by row ([batch, classes], row-major), computed stably in float64. */
export function softmaxRows(logits: Float32Array, classes: number, temperature: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length; r += classes) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[r + k] / temperature);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += out[r + k] = Math.exp(logits[r + k] / temperature - max);
    for (let k = 0; k < classes; k++) out[r + k] /= sum;
  }
  return out;
}

export interface LossGrad {
  loss: number;
  grad: Float32Array;
}

/**
 * T² · mean over the batch of KL(softmax(target/T) || softmax(student/T)), and its gradient with respect to the
 * student's logits, T · (q − p) / batch. The T² factor (Hinton et al.) keeps gradient magnitudes independent of T,
 * so the loss weights need no retuning when T changes. The target (teacher, or a detached peer) gets no gradient.
 */
export function softKl(student: Float32Array, target: Float32Array, classes: number, temperature: number): LossGrad {
  if (student.length !== target.length) throw new Error(`logits differ in size: ${student.length} and ${target.length}`);
  const batch = student.length / classes;
  const p = softmaxRows(target, classes, temperature);
  const q = softmaxRows(student, classes, temperature);
  const grad = new Float32Array(student.length);
  let kl = 0;
  for (let i = 0; i < student.length; i++) {
    if (p[i] > 0) kl += p[i] * (Math.log(p[i]) - Math.log(q[i]));
    grad[i] = (temperature * (q[i] - p[i])) / batch;
  }
  return { loss: (temperature * temperature * kl) / batch, grad };
}

/** The mutual-learning term of one student: the mean of softKl towards each peer, every peer's logits detached. */
export function mutualKl(student: Float32Array, peers: Float32Array[], classes: number, temperature: number): LossGrad {
  const grad = new Float32Array(student.length);
  let loss = 0;
  for (const peer of peers) {
    const r = softKl(student, peer, classes, temperature);
    loss += r.loss / peers.length;
    for (let i = 0; i < grad.length; i++) grad[i] += r.grad[i] / peers.length;
  }
  return { loss, grad };
}

/**
 * Relative squared error of a student's feature map against the teacher's, NHWC with `channels` channels, over the
 * channels not masked: Σ_kept (s − t)² / Σ_kept t². Masked channels (the ones the sparsity term is driving to zero)
 * are left out of both sums, so the feature loss never pulls a channel back that the sparsity is removing, and the
 * remaining channels are still held to the teacher's. Normalising by the teacher's energy makes stages of different
 * scale weigh alike. `mask[c]` true means channel c is masked out.
 */
export function maskedFeatureLoss(student: Float32Array, teacher: Float32Array, channels: number, mask?: ArrayLike<boolean>): LossGrad {
  if (student.length !== teacher.length) throw new Error(`feature maps differ in size: ${student.length} and ${teacher.length}`);
  let energy = 0;
  for (let i = 0; i < teacher.length; i++) if (!mask?.[i % channels]) energy += teacher[i] * teacher[i];
  // An all-zero teacher map (or every channel masked) would divide by zero: fall back to the plain sum.
  const denom = energy > 1e-12 ? energy : 1;
  const grad = new Float32Array(student.length);
  let sum = 0;
  for (let i = 0; i < student.length; i++) {
    if (mask?.[i % channels]) continue;
    const d = student[i] - teacher[i];
    sum += d * d;
    grad[i] = (2 * d) / denom;
  }
  return { loss: sum / denom, grad };
}

/** Loss weights of label-free distillation; defaults in DEFAULT_WEIGHTS say why. */
export interface DistillWeights {
  /** λ1: logit distillation from the teacher. */
  logits: number;
  /** λ2: feature matching at stage outputs (mean over stages). */
  features: number;
  /** λ3: mutual learning between students (mean over peers). */
  mutual: number;
  /**
   * λs: the group-lasso sparsity penalty on chosen channels' BN scale and shift, applied by ISTA; 'auto' sets it at
   * the first selection so that a chosen channel of mean norm reaches zero halfway through the run.
   */
  sparsity: number | 'auto';
  /** Softmax temperature of the logit and mutual terms. */
  temperature: number;
}

/**
 * λ1 = 1 and T = 4: Hinton's soft targets at the temperature usual for CIFAR-scale KD; with the T² factor the logit
 * term's gradients have the size of a cross-entropy's. λ2 = 1: each stage's term is relative (1 means the student's
 * features are as far from the teacher's as the teacher's are from zero), so 1 weighs all stages together like the
 * logit term. λ3 = 1: as in Deep Mutual Learning, where the peer KL has the weight of the main loss. λs = 'auto':
 * ISTA shrinks a chosen channel's norm by lr·λs per step, so a fixed λs suits one run length only (too weak and the
 * final projection, not the training, removes the channels; too strong and they vanish before the rest of the
 * network can adapt). 'auto' picks λs = (mean norm of the first chosen channels) / (lr · half the steps): chosen
 * channels reach zero halfway, and the second half distils the network that is left. A channel at zero stays there
 * while its loss gradient norm is below λs (the prox step's fixed point).
 */
export const DEFAULT_WEIGHTS: DistillWeights = { logits: 1, features: 1, mutual: 1, sparsity: 'auto', temperature: 4 };

/** What one student's loss is made of, before weighting. */
export interface LossParts {
  logits: number;
  features: number;
  mutual: number;
}

/** One student's weighted loss over its outputs and the gradients to seed backpropagation with. */
export function studentLoss(
  args: {
    logits: Float32Array;
    taps: Map<string, Float32Array>;
    teacherLogits: Float32Array;
    teacherTaps: Map<string, Float32Array>;
    peerLogits: Float32Array[];
    /** Channels of each tapped stage output, and the mask of channels left out of its feature term. */
    stages: { tap: string; channels: number; mask?: ArrayLike<boolean> }[];
    classes: number;
  },
  w: DistillWeights,
): { loss: number; parts: LossParts; dLogits: Float32Array; dTaps: Map<string, Float32Array> } {
  const kd = softKl(args.logits, args.teacherLogits, args.classes, w.temperature);
  const dLogits = new Float32Array(args.logits.length);
  for (let i = 0; i < dLogits.length; i++) dLogits[i] = w.logits * kd.grad[i];
  let mutual = 0;
  if (args.peerLogits.length > 0) {
    const m = mutualKl(args.logits, args.peerLogits, args.classes, w.temperature);
    mutual = m.loss;
    for (let i = 0; i < dLogits.length; i++) dLogits[i] += w.mutual * m.grad[i];
  }
  let features = 0;
  const dTaps = new Map<string, Float32Array>();
  const n = args.stages.length;
  for (const s of args.stages) {
    const student = args.taps.get(s.tap);
    const teacher = args.teacherTaps.get(s.tap);
    if (!student || !teacher) throw new Error(`stage output ${s.tap} was not tapped`);
    const f = maskedFeatureLoss(student, teacher, s.channels, s.mask);
    features += f.loss / n;
    for (let i = 0; i < f.grad.length; i++) f.grad[i] *= w.features / n;
    dTaps.set(s.tap, f.grad);
  }
  const loss = w.logits * kd.loss + w.features * features + w.mutual * mutual;
  return { loss, parts: { logits: kd.loss, features, mutual }, dLogits, dTaps };
}
