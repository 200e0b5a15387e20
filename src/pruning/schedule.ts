/** When and how far to prune during training: the prune epochs and the widths after each step of a front-loaded schedule. */
import type { WidthConfig } from '../nets/types.js';

/**
 * Share of the total removal done after step k of S (k = 1..S): 1 - (1 - k/S)^3, the cubic schedule of Zhu & Gupta
 * (2017, "To prune, or not to prune"). Most channels go in the first step (70% of the removal at S = 3), while the net
 * is still plastic, and later steps only trim, so the net has time to recover. It depends on k/S only, so one schedule
 * serves keep, width and FLOPs targets alike. (The gradient-flow paper's code, flowandprune, keeps 1/(1 + k·p/(S(1-p)))
 * of the parameters after round k of S for a total pruned share p: front-loaded too, but nearly linear for mild targets.)
 */
export function removedShare(k: number, steps: number): number {
  if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(k) && k >= 0 && k <= steps)) throw new Error(`step ${k} of ${steps}`);
  return 1 - (1 - k / steps) ** 3;
}

/**
 * Widths after each of S steps from `from` to `to`: group g keeps to[g] + round((from[g] - to[g]) (1 - k/S)^3). Never
 * widening (the share only grows) and exactly `to` after the last step, so iterative pruning ends at the widths one-shot
 * pruning to the same target gives.
 */
export function stepWidths(from: WidthConfig, to: WidthConfig, steps: number): WidthConfig[] {
  return Array.from({ length: steps }, (_, i) => {
    const left = 1 - removedShare(i + 1, steps);
    return from.map((w, g) => to[g] + Math.round((w - to[g]) * left));
  });
}

/** The epochs (0 = at initialisation) at which the S steps prune: E, E + P, ..., E + (S - 1) P. */
export function pruneEpochs(at: number, steps: number, every: number): number[] {
  return Array.from({ length: steps }, (_, i) => at + i * every);
}
