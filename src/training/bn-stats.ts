/**
 * Re-estimates BN running statistics from the net's own activations at its current weights ("precise BN"). Training
 * evaluates mid-schedule, where the running averages lag weights that move fast at a high learning rate and the
 * validation error swings by tens of points from seed to seed; distillation trains through gradients, which leave
 * running statistics alone. Both recompute them before inference-mode use.
 */
import type { EngineBatch, EngineNet, WeightSet } from './engine.js';
import { resolveNet } from '../nets/resolve.js';
import type { NetSpec } from '../nets/types.js';

/**
 * Precise BN's batches by default: 2,048 images at batch 128 (pycls pools 8,192 before each test); 4, 16 and 64 gave the
 * same errors (analysis/pruning-spaces-fmnist).
 */
export const DEFAULT_PRECISE_BN = 16;

/**
 * Pools each BN input's per-channel mean and (unbiased) variance over the batches, in training mode, and writes
 * them as moving_mean / moving_variance: PyTorch's cumulative estimate (momentum None).
 */
export async function recalibrateBn(net: EngineNet, spec: NetSpec, batches: EngineBatch[]): Promise<void> {
  const bns = spec.nodes.filter((n): n is Extract<typeof n, { op: 'bn' }> => n.op === 'bn');
  if (bns.length === 0 || batches.length === 0) return;
  const taps = [...new Set(bns.map((b) => b.input))];
  // Channel counts from the widths: reading the weights to learn them would copy the whole net at every refresh.
  const channels = new Map(resolveNet(spec, net.widths).map((r) => [r.node.id, r.output[r.output.length - 1]]));
  const sums = new Map<string, { n: number; sum: Float64Array; sq: Float64Array }>();
  for (const bn of bns) {
    const c = channels.get(bn.id)!;
    if (!sums.has(bn.input)) sums.set(bn.input, { n: 0, sum: new Float64Array(c), sq: new Float64Array(c) });
  }
  for (const batch of batches) {
    const out = await net.forward(batch, { training: true, taps });
    for (const [id, acc] of sums) {
      const x = out.taps.get(id)!;
      const c = acc.sum.length;
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        acc.sum[i % c] += v;
        acc.sq[i % c] += v * v;
      }
      acc.n += x.length / c;
    }
  }
  const write: WeightSet = new Map();
  for (const bn of bns) {
    const acc = sums.get(bn.input)!;
    const c = acc.sum.length;
    const mean = new Float32Array(c);
    const variance = new Float32Array(c);
    for (let k = 0; k < c; k++) {
      const m = acc.sum[k] / acc.n;
      mean[k] = m;
      variance[k] = Math.max(0, (acc.sq[k] - acc.n * m * m) / Math.max(1, acc.n - 1));
    }
    write.set(`${bn.id}/moving_mean`, { shape: [c], data: mean });
    write.set(`${bn.id}/moving_variance`, { shape: [c], data: variance });
  }
  await net.writeWeights(write);
}
