/** The uniform reference of a space: one keep ratio for every channel group, the widest whose FLOPs stay in the regime. */
import type { Complexity } from '../complexity/count.js';
import { widestUniform } from '../complexity/uniform.js';
import { baseWidths } from '../nets/resolve.js';
import type { WidthConfig } from '../nets/types.js';
import { formatCount as fmt } from '../util/format.js';
import { selects, type CompiledSpace } from './compile.js';

export interface UniformReference {
  /** The keep ratio every group gets (the smallest that gives these widths). */
  keep: number;
  widths: WidthConfig;
  complexity: Complexity;
  /** The next wider uniform configuration, whose FLOPs leave the regime; absent at full width. */
  wider?: { keep: number; widths: WidthConfig; flops: number };
}

/**
 * Quanta as the space rounds widths: a group takes the quantum of the sampler that selects it (1 where none does).
 * Every group is pruned, also one the space leaves at full width: the reference is plain uniform pruning.
 */
export function spaceQuanta(space: CompiledSpace): number[] {
  return space.net.groups.map((g) => space.loaded.file.samplers.find((s) => selects(s.select, g))?.quantum ?? 1);
}

/**
 * The widest uniform configuration whose FLOPs lie inside the space's FLOPs regime, or the reason there is none
 * (the regime's FLOPs window falls between two neighbouring uniform configurations, or below the narrowest).
 */
export function uniformReference(space: CompiledSpace): UniformReference | { reason: string } {
  const bases = baseWidths(space.net);
  const quanta = spaceQuanta(space);
  const predict = space.latency ? space.predictLatency : undefined;
  if (predict) return uniformInLatency(space, bases, quanta, predict);
  const widest = widestUniform(bases, (w) => space.complexity(w).flops, space.flops.max, quanta);
  if (!widest) return { reason: `even one quantum per group has more FLOPs than the regime's maximum (${fmt(space.flops.max)})` };
  if (widest.flops < space.flops.min) {
    return {
      reason: `no uniform keep ratio lands inside the regime's FLOPs ${fmt(space.flops.min)}–${fmt(space.flops.max)}: ` +
        `keep ${widest.ratio.toFixed(4)} gives ${fmt(widest.flops)}${widest.wider ? `, the next wider ${fmt(widest.wider.flops)}` : ''}`,
    };
  }
  return {
    keep: widest.ratio,
    widths: widest.widths,
    complexity: space.complexity(widest.widths),
    ...(widest.wider ? { wider: { keep: widest.wider.ratio, widths: widest.wider.widths, flops: widest.wider.flops } } : {}),
  };
}

/**
 * With a latency window, the widest uniform configuration inside both windows: FLOPs and predicted latency both grow
 * with the keep ratio, so the larger of the two shares of their maxima is what must stay at most 1.
 */
function uniformInLatency(space: CompiledSpace, bases: number[], quanta: number[], predict: (w: WidthConfig) => number): UniformReference | { reason: string } {
  const ms = space.latency!.ms;
  const share = (w: WidthConfig) => Math.max(space.complexity(w).flops / space.flops.max, predict(w) / ms.max);
  const widest = widestUniform(bases, share, 1, quanta);
  if (!widest) return { reason: `even one quantum per group exceeds the regime's FLOPs or latency maximum` };
  const complexity = space.complexity(widest.widths);
  const latency = predict(widest.widths);
  if (complexity.flops < space.flops.min || latency < ms.min) {
    return {
      reason: `no uniform keep ratio lands inside the regime: keep ${widest.ratio.toFixed(4)} gives FLOPs ${fmt(complexity.flops)} ` +
        `and a predicted ${latency.toFixed(3)} ms (window ${ms.min}–${ms.max === Infinity ? 'any' : ms.max} ms)`,
    };
  }
  return {
    keep: widest.ratio,
    widths: widest.widths,
    complexity,
    ...(widest.wider ? { wider: { keep: widest.wider.ratio, widths: widest.wider.widths, flops: space.complexity(widest.wider.widths).flops } } : {}),
  };
}
