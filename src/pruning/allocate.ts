/**
 * How many channels each group keeps: the same keep ratio everywhere (uniform), or decided by the importance measure
 * itself (global: the channels of all groups ranked together, as in the gradient-flow paper's code).
 */
import { compileComplexity, type ComplexityModel } from '../complexity/terms.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';

export type Allocation = 'uniform' | 'global';
export const ALLOCATIONS: readonly Allocation[] = ['uniform', 'global'];

/** Share of every group's full width that global allocation always keeps (flowandprune keeps 5% of each layer). */
export const DEFAULT_MIN_KEEP = 0.05;

/** What a global allocation must reach: FLOPs, params or the channel count at most `limit` (absolute). */
export interface Budget {
  metric: 'flops' | 'params' | 'channels';
  limit: number;
}

/** A global allocation's target: the budget, and the widths no group may go below. */
export interface GlobalPlan {
  budget: Budget;
  floor: WidthConfig;
}

/** FLOPs or params within this share under the budget count as meeting it. */
export const BUDGET_TOLERANCE = 0.01;

export function measure(model: ComplexityModel, widths: WidthConfig, metric: Budget['metric']): number {
  if (metric === 'channels') return widths.reduce((a, b) => a + b, 0);
  return model.evaluate(widths)[metric];
}

/** Every group keeps at least ceil(minKeep x its full width) channels, and at least one. */
export function minKeepWidths(fullWidths: WidthConfig, minKeep: number): WidthConfig {
  if (!(minKeep > 0 && minKeep <= 1)) throw new UserError(`--min-keep must be in (0, 1], got ${minKeep}`);
  return fullWidths.map((w) => Math.max(1, Math.ceil(minKeep * w - 1e-9)));
}

/**
 * The budget of a target for global allocation, checked against the floor: `keep R` keeps that share of all channels
 * (flowandprune's prune_percent counts filters), `flops F` / `params P` are a fraction of the full net's (<= 1) or an
 * absolute count. A target the floor already exceeds is a UserError naming the flag.
 */
export function globalPlan(
  spec: NetSpec,
  fullWidths: WidthConfig,
  target: { keep: number } | { widths: WidthConfig } | { flops: number } | { params: number },
  minKeep: number,
): GlobalPlan {
  if ('widths' in target) throw new UserError('--widths fixes every group\'s width; --allocation global needs --keep, --flops or --params');
  const model = compileComplexity(spec);
  const floor = minKeepWidths(fullWidths, minKeep);
  let budget: Budget;
  let flag: string;
  let given: number;
  if ('keep' in target) {
    if (!(target.keep > 0 && target.keep <= 1)) throw new UserError(`--keep must be in (0, 1], got ${target.keep}`);
    budget = { metric: 'channels', limit: Math.round(target.keep * measure(model, fullWidths, 'channels')) };
    [flag, given] = ['--keep', target.keep];
  } else {
    const metric = 'flops' in target ? 'flops' : 'params';
    given = 'flops' in target ? target.flops : target.params;
    flag = `--${metric}`;
    if (!(given > 0)) throw new UserError(`${flag} must be positive, got ${given}`);
    budget = { metric, limit: given <= 1 ? given * measure(model, fullWidths, metric) : given };
  }
  const least = measure(model, floor, budget.metric);
  if (least > budget.limit) {
    throw new UserError(
      `${flag} ${given}: ${Math.round(budget.limit).toLocaleString('en-US')} ${budget.metric} is out of reach under --min-keep ${minKeep} ` +
        `(keeping ${minKeep} of every group needs ${Math.round(least).toLocaleString('en-US')})`,
    );
  }
  return { budget, floor };
}

/** Each group's scores divided by their mean absolute value, so groups of different scales compete fairly. */
function normalisedByGroup(scores: Float64Array[]): Float64Array[] {
  return scores.map((s) => {
    const scale = s.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, s.length);
    return scale > 0 ? s.map((v) => v / scale) : s;
  });
}

/**
 * Global allocation: every channel of every group (a coupled group's channel is one unit, scored by its combined
 * score) is ranked by its score divided by its group's mean |score|; channels go lowest first, no group below its
 * floor, until the budget holds. A removal that would land more than BUDGET_TOLERANCE under the budget is skipped in
 * favour of the next cheaper one, so FLOPs and params end within 1% under the limit wherever some channel is small
 * enough; the channel count lands exactly. Returns the widths; which channels are kept is chooseKept's (zero-pad chains).
 */
export function allocateGlobal(spec: NetSpec, widths: WidthConfig, scores: Float64Array[], plan: GlobalPlan): WidthConfig {
  const model = compileComplexity(spec);
  const { budget, floor } = plan;
  scores.forEach((s, g) => {
    if (s.length !== widths[g]) throw new Error(`group ${g}: ${s.length} scores for ${widths[g]} channels`);
  });
  const norm = normalisedByGroup(scores);
  const order: [number, number][] = norm.flatMap((s, g) => Array.from(s, (_, c) => [g, c] as [number, number]));
  order.sort(([g, c], [h, d]) => norm[g][c] - norm[h][d] || g - h || c - d);
  const run = (lower: number): { w: WidthConfig; m: number } => {
    const w = [...widths];
    let m = measure(model, w, budget.metric);
    for (const [g] of order) {
      if (m <= budget.limit) break;
      if (w[g] <= floor[g]) continue;
      w[g]--;
      const next = measure(model, w, budget.metric);
      if (next < lower) {
        w[g]++;
        continue;
      }
      m = next;
    }
    return { w, m };
  };
  const lower = budget.metric === 'channels' ? -Infinity : (1 - BUDGET_TOLERANCE) * budget.limit;
  const first = run(lower);
  if (first.m <= budget.limit) return first.w;
  // Every remaining removal overshoots by more than the tolerance: take the ranking as it is.
  const second = run(-Infinity);
  if (second.m > budget.limit) throw new Error(`global allocation could not reach ${budget.limit} ${budget.metric}`);
  return second.w;
}
