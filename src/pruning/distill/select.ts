/**
 * Adaptive choice of the channels to sparsify: the least sensitive channels, per group as many as a FLOPs target
 * (counted by the compiled complexity model) or a pruning rate needs.
 */
import type { ComplexityModel } from '../../complexity/terms.js';
import type { NetSpec, WidthConfig } from '../../nets/types.js';
import { UserError } from '../../util/errors.js';

/**
 * What the sparsity drives towards: FLOPs at most `flops` (absolute), a fraction `rate` of all channels removed, or
 * given widths per group (a sampled width configuration of a campaign).
 */
export type SparsityTarget = { flops: number } | { rate: number } | { widths: WidthConfig };

export interface Selection {
  /** Per group, the channel indices chosen to become zero, ascending. */
  chosen: number[][];
  /** Widths once the chosen channels are removed. */
  widths: WidthConfig;
  /** FLOPs at those widths. */
  flops: number;
}

/** The fewest FLOPs the network can have (every group at one channel) and checks a target against it. */
export function checkTarget(spec: NetSpec, maxWidths: WidthConfig, model: ComplexityModel, target: SparsityTarget): void {
  if ('widths' in target) {
    if (target.widths.length !== maxWidths.length) throw new UserError(`target widths name ${target.widths.length} groups, ${spec.ref.family} has ${maxWidths.length}`);
    target.widths.forEach((w, g) => {
      if (!Number.isInteger(w) || w < 1 || w > maxWidths[g]) throw new UserError(`target width of group ${g} (${spec.groups[g].name}) must be in 1..${maxWidths[g]}, got ${w}`);
    });
    return;
  }
  if ('rate' in target) {
    const total = maxWidths.reduce((a, b) => a + b, 0);
    const most = total - maxWidths.length;
    if (!(target.rate >= 0 && target.rate < 1)) throw new UserError(`pruning rate must be in [0, 1), got ${target.rate}`);
    if (Math.ceil(target.rate * total - 1e-9) > most) {
      throw new UserError(`pruning rate ${target.rate} is out of reach: ${spec.ref.family} keeps one channel per group, so at most ${(most / total).toFixed(4)} of its channels can go`);
    }
    return;
  }
  const floor = model.evaluate(maxWidths.map(() => 1)).flops;
  if (!(target.flops >= floor)) {
    throw new UserError(`FLOPs target ${Math.round(target.flops)} is out of reach: ${spec.ref.family} needs at least ${Math.round(floor)} FLOPs with one channel per group`);
  }
}

/**
 * Greedy: repeatedly removes the channel with the lowest cost, where a channel's cost is its sensitivity relative to
 * its group's mean sensitivity, divided (for a FLOPs target) by the FLOPs its removal saves at the current widths,
 * relative to the mean saving. Groups thus lose channels in proportion to what they cost and how little they matter,
 * and stop when the target is met. Channels already zero have sensitivity 0 and go first. Every group keeps one
 * channel, and a channel is only chosen when `removable` allows it (zero-pad shortcut couplings). A last pass gives
 * back chosen channels, latest first, that fit under the target again, so the projected FLOPs end just below it.
 */
export function selectChannels(
  spec: NetSpec,
  maxWidths: WidthConfig,
  model: ComplexityModel,
  scores: Float64Array[],
  target: SparsityTarget,
  removable: (g: number, c: number, gone: Set<number>[]) => boolean = () => true,
): Selection {
  checkTarget(spec, maxWidths, model, target);
  const widths = [...maxWidths];
  // Each group's channels, least sensitive first (ties by index, so the choice is deterministic).
  const order = scores.map((s, g) => {
    if (s.length !== maxWidths[g]) throw new Error(`group ${g}: ${s.length} scores for ${maxWidths[g]} channels`);
    return Array.from(s.keys()).sort((a, b) => s[a] - s[b] || a - b);
  });
  const means = scores.map((s) => {
    const m = s.reduce((a, b) => a + b, 0) / s.length;
    return m > 0 ? m : 1;
  });
  const chosen: number[][] = spec.groups.map(() => []);
  const gone = spec.groups.map(() => new Set<number>());
  // The next channel of a group: its least sensitive one not yet chosen that may be removed now.
  const next = (g: number): number => order[g].find((c) => !gone[g].has(c) && removable(g, c, gone)) ?? -1;
  const total = maxWidths.reduce((a, b) => a + b, 0);
  const byRate = 'rate' in target;
  const toRemove = byRate ? Math.ceil(target.rate * total - 1e-9) : Infinity;
  if ('widths' in target) {
    // Each group loses its least sensitive removable channels down to its target width; passes repeat because a
    // shortcut's target group can only lose a channel after its source group has.
    for (let progress = true; progress; ) {
      progress = false;
      for (let g = 0; g < widths.length; g++) {
        while (widths[g] > target.widths[g]) {
          const c = next(g);
          if (c < 0) break;
          chosen[g].push(c);
          gone[g].add(c);
          widths[g]--;
          progress = true;
        }
      }
    }
    return { chosen: chosen.map((c) => c.sort((a, b) => a - b)), widths, flops: model.evaluate(widths).flops };
  }
  let removed = 0;
  const history: [number, number][] = [];
  let flops = model.evaluate(widths).flops;
  const flopsTarget = 'flops' in target ? target.flops : 0;
  const done = (): boolean => (byRate ? removed >= toRemove : flops <= flopsTarget);
  while (!done()) {
    const savings = widths.map((w, g) => {
      if (w <= 1) return 0;
      widths[g] = w - 1;
      const f = model.evaluate(widths).flops;
      widths[g] = w;
      return flops - f;
    });
    const candidates = widths.map((_, g) => next(g));
    const open = savings.map((s, g) => widths[g] > 1 && candidates[g] >= 0 && (byRate || s > 0));
    const meanSaving = savings.reduce((a, s, g) => a + (open[g] ? s : 0), 0) / Math.max(1, open.filter(Boolean).length);
    let best = -1;
    let bestCost = Infinity;
    for (let g = 0; g < widths.length; g++) {
      if (!open[g]) continue;
      const c = candidates[g];
      const relative = scores[g][c] / means[g];
      const cost = byRate ? relative : relative / (savings[g] / meanSaving);
      if (cost < bestCost) {
        bestCost = cost;
        best = g;
      }
    }
    if (best < 0) throw new Error('no channel left to remove before reaching the target');
    chosen[best].push(candidates[best]);
    gone[best].add(candidates[best]);
    history.push([best, candidates[best]]);
    widths[best]--;
    removed++;
    flops = model.evaluate(widths).flops;
  }
  if (!byRate) {
    // The last removal may overshoot by one wide channel (a stage channel of a CIFAR ResNet is ~2% of its FLOPs):
    // give back chosen channels, latest first, while the target still holds and every coupling stays satisfied.
    const consistent = (): boolean => gone.every((set, h) => [...set].every((c) => removable(h, c, gone)));
    for (let i = history.length - 1; i >= 0; i--) {
      const [g, c] = history[i];
      widths[g]++;
      gone[g].delete(c);
      const f = model.evaluate(widths).flops;
      if (f <= flopsTarget && consistent()) {
        flops = f;
        chosen[g] = chosen[g].filter((x) => x !== c);
      } else {
        widths[g]--;
        gone[g].add(c);
      }
    }
  }
  return { chosen: chosen.map((c) => c.sort((a, b) => a - b)), widths, flops };
}
