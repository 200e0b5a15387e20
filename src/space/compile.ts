/** Turns a validated space into what sampling needs: per-group width choices, absolute regime bounds, constraint checks. */
import type { Complexity } from '../complexity/count.js';
import { compileComplexity } from '../complexity/terms.js';
import { baseWidths } from '../nets/resolve.js';
import type { ChannelGroup, NetSpec, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import type { LoadedSpace } from './load.js';
import type { LatencyRegime, SamplerSpec, Selection, SpaceFile } from './schema.js';

/**
 * Predicted batch-1 milliseconds of the network at some widths on the regime's target. The space layer cannot time
 * anything itself: the layer above builds the predictor (a per-layer latency table) and hands it in.
 */
export type LatencyPredictor = (widths: WidthConfig) => number;

export interface CompileOptions {
  /** Needed to sample a space whose regime has a latency window. */
  predictLatency?: LatencyPredictor;
}

export interface GroupChoices {
  group: ChannelGroup;
  /** Allowed widths, ascending. */
  widths: number[];
  distribution: SamplerSpec['distribution'];
}

/** A closed window on one quantity; absent bounds are open. */
export interface Bounds {
  min: number;
  max: number;
}

export interface CompiledSpace {
  loaded: LoadedSpace;
  net: NetSpec;
  choices: GroupChoices[];
  original: Complexity;
  flops: Bounds;
  params: Bounds;
  flopsPerParam: Bounds;
  /** The regime's latency window in milliseconds and its target, when it states one. */
  latency?: { ms: Bounds; target: LatencyRegime['target']; batch: number };
  /** The predictor the latency window is checked against (absent: the window cannot be checked). */
  predictLatency?: LatencyPredictor;
  complexity(widths: WidthConfig): Complexity;
  /** Whether the widths satisfy the regime and the constraints (not the sampler ranges); the latency window is checked by `admitsLatency`. */
  admits(widths: WidthConfig, c?: Complexity): boolean;
  /** Whether the predicted latency lies in the latency window (true when the regime states none). */
  admitsLatency(ms: number): boolean;
  /** Whether the widths are a configuration this space could sample. */
  contains(widths: WidthConfig): boolean;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
}

export function selects(selection: Selection, group: ChannelGroup): boolean {
  if (selection.names && !selection.names.some((n) => globToRegExp(n).test(group.name))) return false;
  if (selection.kinds && !selection.kinds.includes(group.kind)) return false;
  if (selection.stages && !selection.stages.includes(group.stage)) return false;
  return true;
}

/** The widths a sampler allows for one group: the range, in multiples of the quantum, plus the full width. */
function allowedWidths(sampler: SamplerSpec, group: ChannelGroup, where: string): number[] {
  const eps = 1e-9;
  const lo = sampler.keep ? Math.max(1, Math.ceil(sampler.keep.min * group.base - eps)) : sampler.width!.min;
  const hi = sampler.keep ? Math.min(group.base, Math.floor(sampler.keep.max * group.base + eps)) : Math.min(sampler.width!.max, group.base);
  const out: number[] = [];
  for (let w = Math.ceil(lo / sampler.quantum) * sampler.quantum; w <= hi; w += sampler.quantum) out.push(w);
  if (hi === group.base && out[out.length - 1] !== group.base) out.push(group.base);
  if (out.length === 0) {
    throw new UserError(
      `${where}: group ${group.name} (width ${group.base}) has no width in ${lo}..${hi} that is a multiple of ${sampler.quantum}`,
    );
  }
  return out;
}

function absoluteBounds(
  window: { min?: number; max?: number; unit?: 'fraction' | 'absolute' } | undefined,
  original: number,
): Bounds {
  if (!window) return { min: 0, max: Infinity };
  const scale = window.unit === 'absolute' ? 1 : original;
  return { min: (window.min ?? 0) * scale, max: window.max === undefined ? Infinity : window.max * scale };
}

export function compileSpace(loaded: LoadedSpace, opts: CompileOptions = {}): CompiledSpace {
  const { file, net } = loaded;
  const where = loaded.path || file.name;
  const model = compileComplexity(net);
  const original = model.evaluate(baseWidths(net));
  const choices = net.groups.map((group): GroupChoices => {
    const index = file.samplers.findIndex((s) => selects(s.select, group));
    // A group no sampler selects is not pruned.
    if (index < 0) return { group, widths: [group.base], distribution: 'uniform' };
    const sampler = file.samplers[index];
    return { group, widths: allowedWidths(sampler, group, `${where}: samplers.${index}`), distribution: sampler.distribution };
  });
  const flops = absoluteBounds(file.regime.flops, original.flops);
  const params = absoluteBounds(file.regime.params, original.params);
  const ratio = file.regime.flopsPerParam;
  const flopsPerParam = { min: ratio?.min ?? 0, max: ratio?.max ?? Infinity };
  const lat = file.regime.latency;
  const latency = lat && { ms: { min: lat.ms.min ?? 0, max: lat.ms.max ?? Infinity }, target: lat.target, batch: lat.batch };
  const monotone = compileConstraints(file, net);
  const complexity = (w: WidthConfig) => model.evaluate(w);
  const admits = (w: WidthConfig, c = complexity(w)) =>
    c.flops >= flops.min &&
    c.flops <= flops.max &&
    c.params >= params.min &&
    c.params <= params.max &&
    c.flops / c.params >= flopsPerParam.min &&
    c.flops / c.params <= flopsPerParam.max &&
    monotone.every((check) => check(w));
  return {
    loaded,
    net,
    choices,
    original,
    flops,
    params,
    flopsPerParam,
    ...(latency ? { latency } : {}),
    ...(opts.predictLatency ? { predictLatency: opts.predictLatency } : {}),
    complexity,
    admits,
    admitsLatency: (ms) => !latency || (ms >= latency.ms.min && ms <= latency.ms.max),
    contains: (w) => w.length === choices.length && choices.every((c, i) => c.widths.includes(w[i])) && admits(w),
  };
}

function compileConstraints(file: SpaceFile, net: NetSpec): ((w: WidthConfig) => boolean)[] {
  return file.constraints.map((c, i) => {
    const groups = net.groups.filter((g) => selects(c.select, g));
    if (groups.length < 2) {
      throw new UserError(`constraints.${i}: selects ${groups.length} group(s); a non-decreasing rule needs at least 2`);
    }
    const value = (w: WidthConfig, g: ChannelGroup) => (c.of === 'keep' ? w[g.id] / g.base : w[g.id]);
    return (w) => groups.every((g, k) => k === 0 || value(w, g) >= value(w, groups[k - 1]) - 1e-12);
  });
}
