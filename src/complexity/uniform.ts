/** Uniform pruning under a FLOPs limit: the widest configuration that one keep ratio for every channel group gives. */
import { uniformWidths } from '../nets/resolve.js';
import type { WidthConfig } from '../nets/types.js';

/** A uniform configuration: the smallest ratio that gives these widths (1 for the full widths), and their FLOPs. */
export interface UniformPoint {
  ratio: number;
  widths: WidthConfig;
  flops: number;
}

export interface WidestUniform extends UniformPoint {
  /** The next wider uniform configuration (its FLOPs exceed the limit); absent when `widths` are the full widths. */
  wider?: UniformPoint;
}

/**
 * The widest uniform configuration whose FLOPs are at most `limit`, exactly: widths change only where ratio x width
 * crosses a rounding point, so the search runs over those points (FLOPs never fall as the ratio grows). Null when even
 * the narrowest uniform configuration exceeds the limit.
 */
export function widestUniform(bases: WidthConfig, flopsOf: (w: WidthConfig) => number, limit: number, quanta?: readonly number[]): WidestUniform | null {
  // Ratios at which some group's rounded width steps up; the configuration is constant between neighbours.
  const points = new Set<number>([0]);
  bases.forEach((b, g) => {
    const q = quanta?.[g] ?? 1;
    for (let k = 0; (k + 0.5) * q <= b; k++) points.add(((k + 0.5) * q) / b);
  });
  const ratios = [...points].filter((r) => r <= 1).sort((a, b) => a - b);
  const at = (i: number): UniformPoint => {
    const widths = uniformWidths(bases, ratios[i], quanta);
    return { ratio: ratios[i], widths, flops: flopsOf(widths) };
  };
  if (at(0).flops > limit) return null;
  // Binary search for the last rounding point whose configuration fits.
  let lo = 0;
  let hi = ratios.length - 1;
  if (at(hi).flops <= limit) return { ...at(hi), ratio: 1 };
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (at(mid).flops <= limit) lo = mid;
    else hi = mid;
  }
  const best = at(lo);
  // Neighbouring points may give the same widths (two groups step at one ratio): report the first one that differs.
  let next = hi;
  while (next < ratios.length - 1 && at(next).widths.every((w, g) => w === best.widths[g])) next++;
  const wider = at(next);
  return { ...best, ...(wider.widths.some((w, g) => w !== best.widths[g]) ? { wider } : {}) };
}
