/**
 * Structured sparsity on BN parameters: per-channel norms, Taylor channel sensitivity, and the ISTA step
 * (group soft-thresholding of a channel's scale and shift across every BN of its group).
 */
import type { WeightSet, WeightTensor } from '../../training/engine.js';

function param(weights: WeightSet, name: string): WeightTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`weight ${name} is missing`);
  return t;
}

/**
 * Euclidean norm of each channel's (γ, β) over the group's BN layers. A channel whose norm is 0 outputs exactly zero
 * from every conv of its group (BN gives β = 0, ReLU keeps 0, residual adds of zeros stay zero), so removing it
 * leaves the network's function unchanged.
 */
export function channelNorms(weights: WeightSet, bns: string[], width: number): Float64Array {
  const out = new Float64Array(width);
  for (const bn of bns) {
    for (const p of ['gamma', 'beta']) {
      const d = param(weights, `${bn}/${p}`).data;
      for (let c = 0; c < width; c++) out[c] += d[c] * d[c];
    }
  }
  return out.map(Math.sqrt);
}

/**
 * First-order Taylor sensitivity of each channel, (Σ over the group's BN layers of γ·∂L/∂γ + β·∂L/∂β)²: the squared
 * estimated change of the loss if the channel's BN output were set to zero (Molchanov et al. 2019).
 */
export function taylorSensitivity(weights: WeightSet, grads: WeightSet, bns: string[], width: number): Float64Array {
  const out = new Float64Array(width);
  for (const bn of bns) {
    for (const p of ['gamma', 'beta']) {
      const w = param(weights, `${bn}/${p}`).data;
      const g = param(grads, `${bn}/${p}`).data;
      for (let c = 0; c < width; c++) out[c] += w[c] * g[c];
    }
  }
  return out.map((x) => x * x);
}

/**
 * The proximal step of λ·Σ_c ||(γ_c, β_c)||₂ after a gradient step at learning rate lr (ISTA with group
 * soft-thresholding): each chosen channel's vector shrinks by τ = lr·λ in norm, and becomes exactly zero when its
 * norm is at most τ. Only the chosen channels change. Returns the BN tensors it changed (copies), for writeWeights.
 */
export function softThreshold(weights: WeightSet, bns: string[], channels: Iterable<number>, tau: number): WeightSet {
  const out: WeightSet = new Map();
  const names = bns.flatMap((bn) => [`${bn}/gamma`, `${bn}/beta`]);
  const tensors = names.map((n) => {
    const t = param(weights, n);
    const copy = { shape: [...t.shape], data: t.data.slice() };
    out.set(n, copy);
    return copy.data;
  });
  for (const c of channels) {
    let sq = 0;
    for (const d of tensors) sq += d[c] * d[c];
    const norm = Math.sqrt(sq);
    const scale = norm > tau ? 1 - tau / norm : 0;
    for (const d of tensors) d[c] = scale * d[c];
  }
  return out;
}
