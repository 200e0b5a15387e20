/** Seeded rejection sampling of width configurations inside a space's regime, de-duplicated and bounded. */
import type { Complexity } from '../complexity/count.js';
import type { WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import { formatCount as fmt } from '../util/format.js';
import { makeRng, type Rng } from '../util/rng.js';
import type { Bounds, CompiledSpace, GroupChoices } from './compile.js';

export interface SampledConfig {
  widths: WidthConfig;
  complexity: Complexity;
  /** Predicted batch-1 milliseconds, for spaces with a latency window. */
  predictedLatencyMs?: number;
}

export interface SampleResult {
  configs: SampledConfig[];
  attempts: number;
  /** Share of attempts inside the regime and constraints (duplicates count as accepted). */
  acceptanceRate: number;
  /** Why fewer than the requested configurations came back, if they did. */
  shortfall?: string;
}

export interface SampleOptions {
  /** Upper bound on draws; defaults to max(200000, 2000 x n). */
  maxAttempts?: number;
  /** Configurations (by widths) that must not be drawn again, e.g. those of earlier rounds. */
  exclude?: Iterable<WidthConfig>;
  /**
   * Sample without the latency window even though the regime states one (refine's checks that a child's width ranges
   * can be sampled at all, and its kept-share estimate where no predictor was built).
   */
  ignoreLatency?: boolean;
}

function nearestIndex(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && value - sorted[lo - 1] < sorted[lo] - value ? lo - 1 : lo;
}

function drawWidth(c: GroupChoices, rng: Rng): number {
  const w = c.widths;
  if (w.length === 1) return w[0];
  if (c.distribution === 'uniform') return w[Math.floor(rng() * w.length)];
  const lo = Math.log(w[0]);
  const hi = Math.log(w[w.length - 1]);
  return w[nearestIndex(w, Math.exp(lo + rng() * (hi - lo)))];
}

const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(1)}%`;

/** FLOPs and params grow with every width, so the extremes of each group bound what the space reaches. */
export function reachable(space: CompiledSpace): { flops: Bounds; params: Bounds } {
  const low = space.complexity(space.choices.map((c) => c.widths[0]));
  const high = space.complexity(space.choices.map((c) => c.widths[c.widths.length - 1]));
  return { flops: { min: low.flops, max: high.flops }, params: { min: low.params, max: high.params } };
}

function checkReachable(space: CompiledSpace): void {
  const where = space.loaded.path || space.loaded.file.name;
  const reach = reachable(space);
  for (const key of ['flops', 'params'] as const) {
    const want = space[key];
    const got = reach[key];
    if (want.max < got.min || want.min > got.max) {
      const orig = space.original[key];
      const wantText = `${fmt(want.min)}–${want.max === Infinity ? 'any' : fmt(want.max)}`;
      throw new UserError(
        `${where}: regime.${key} asks ${wantText} (${pct(want.min, orig)}–${want.max === Infinity ? '' : pct(want.max, orig)} of the original) ` +
          `but the space reaches only ${fmt(got.min)}–${fmt(got.max)} (${pct(got.min, orig)}–${pct(got.max, orig)})`,
      );
    }
  }
}

function describeRegime(space: CompiledSpace): string {
  const win = (b: Bounds, f: (x: number) => string) => `${f(b.min)}–${b.max === Infinity ? 'any' : f(b.max)}`;
  const parts = [`FLOPs ${win(space.flops, fmt)}`];
  if (space.latency) parts.push(`predicted latency ${win(space.latency.ms, (x) => `${x}`)} ms`);
  if (space.loaded.file.regime.params) parts.push(`params ${win(space.params, fmt)}`);
  if (space.loaded.file.regime.flopsPerParam) parts.push(`FLOPs/param ${win(space.flopsPerParam, (x) => x.toFixed(1))}`);
  return parts.join(', ');
}

export function sampleSpace(space: CompiledSpace, n: number, seed: number, opts: SampleOptions = {}): SampleResult {
  if (!Number.isInteger(n) || n < 1) throw new UserError(`number of samples must be a positive integer, got ${n}`);
  checkReachable(space);
  const where = space.loaded.path || space.loaded.file.name;
  const predict = space.latency && !opts.ignoreLatency ? space.predictLatency : undefined;
  if (space.latency && !opts.ignoreLatency && !predict) {
    throw new UserError(`${where}: regime.latency needs a latency predictor for ${space.latency.target}, which this command does not build`);
  }
  const rng = makeRng(seed, `sample:${space.loaded.file.name}`);
  const maxAttempts = opts.maxAttempts ?? Math.max(200_000, 2000 * n);
  const seen = new Set<string>();
  for (const w of opts.exclude ?? []) seen.add(w.join(','));
  const configs: SampledConfig[] = [];
  const widths = new Array<number>(space.choices.length);
  let attempts = 0;
  let admitted = 0;
  while (configs.length < n && attempts < maxAttempts) {
    attempts++;
    for (let g = 0; g < widths.length; g++) widths[g] = drawWidth(space.choices[g], rng);
    const complexity = space.complexity(widths);
    if (!space.admits(widths, complexity)) continue;
    const predictedLatencyMs = predict?.(widths);
    if (predictedLatencyMs !== undefined && !space.admitsLatency(predictedLatencyMs)) continue;
    admitted++;
    const key = widths.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    configs.push({ widths: widths.slice(), complexity, ...(predictedLatencyMs !== undefined ? { predictedLatencyMs } : {}) });
  }
  const acceptanceRate = admitted / attempts;
  if (configs.length === 0) {
    const reach = reachable(space);
    throw new UserError(
      `${where}: no configuration satisfied the regime and constraints in ${attempts} draws ` +
        `(the space reaches FLOPs ${fmt(reach.flops.min)}–${fmt(reach.flops.max)}; the regime asks ` +
        `${describeRegime(space)})`,
    );
  }
  const result: SampleResult = { configs, attempts, acceptanceRate };
  if (configs.length < n) {
    result.shortfall =
      admitted > configs.length
        ? `only ${configs.length} distinct configurations found in ${attempts} draws (the regime holds few distinct configurations)`
        : `only ${configs.length} configurations accepted in ${attempts} draws (acceptance ${(100 * acceptanceRate).toFixed(3)}%)`;
  }
  return result;
}
