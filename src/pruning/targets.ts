/** The widths a pruned child gets from a parent: a keep ratio, explicit widths, or the widest uniform ratio under a FLOPs or params target. */
import { complexity } from '../complexity/count.js';
import { widestUniform } from '../complexity/uniform.js';
import { uniformWidths } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';

/** Every group keeps round-half-up(ratio x parent width) channels, at least 1. */
export function keepFromParent(parentWidths: WidthConfig, ratio: number): WidthConfig {
  if (!(ratio > 0 && ratio <= 1)) throw new UserError(`--keep must be in (0, 1], got ${ratio}`);
  return uniformWidths(parentWidths, ratio);
}

/** Explicit widths must name every group and stay within the parent's widths. */
export function checkChildWidths(spec: NetSpec, parentWidths: WidthConfig, widths: WidthConfig): void {
  if (widths.length !== spec.groups.length) {
    throw new UserError(`--widths: ${spec.ref.family} has ${spec.groups.length} channel groups, got ${widths.length} widths`);
  }
  widths.forEach((w, g) => {
    if (!Number.isInteger(w) || w < 1 || w > parentWidths[g]) {
      throw new UserError(`--widths: group ${g} (${spec.groups[g].name}) must keep 1..${parentWidths[g]} channels (the parent's width), got ${w}`);
    }
  });
}

/**
 * The widest uniform keep ratio whose FLOPs (or params) are at most `target` (a fraction of the parent's when <= 1,
 * else an absolute count). A target below the count of one channel per group cannot be reached.
 */
export function widthsForMetric(
  spec: NetSpec,
  parentWidths: WidthConfig,
  target: number,
  metric: 'flops' | 'params',
): { widths: WidthConfig; flops: number; params: number } {
  const full = complexity(spec, parentWidths)[metric];
  const limit = target <= 1 ? target * full : target;
  if (!(limit > 0)) throw new UserError(`--${metric} must be positive, got ${target}`);
  const widest = widestUniform(parentWidths, (w) => complexity(spec, w)[metric], limit);
  if (!widest) {
    const floor = complexity(spec, parentWidths.map(() => 1))[metric];
    throw new UserError(`--${metric} ${target}: ${Math.round(limit).toLocaleString('en-US')} ${metric === 'flops' ? 'FLOPs' : 'params'} is below the ${floor.toLocaleString('en-US')} of one channel per group`);
  }
  const c = complexity(spec, widest.widths);
  return { widths: widest.widths, flops: c.flops, params: c.params };
}

/** The widest uniform keep ratio under a FLOPs target (see widthsForMetric). */
export function widthsForFlops(spec: NetSpec, parentWidths: WidthConfig, target: number): { widths: WidthConfig; flops: number } {
  return widthsForMetric(spec, parentWidths, target, 'flops');
}
