/** How often refinement changes a space on noise: rule decisions over populations whose errors are permuted across configurations. */
import type { NetSpec } from '../nets/types.js';
import { compileSpace } from '../space/compile.js';
import type { LoadedSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import { makeRng, normalDraw } from '../util/rng.js';
import { best, defaultTopK, type Observation } from './population.js';
import { widthProfile } from './profiles.js';
import { incompleteBeta, solveIncreasing } from './significance.js';
import { decideRules, type RefineOptions, type RefineRule } from './refine.js';

export interface NullRates {
  permutations: number;
  /** Share in which the rule changed the space (a candidate of it accepted by the family-wise test). */
  applied: Record<string, number>;
  /** Share in which any rule changed the space: the family-wise rate. */
  anyChange: number;
  /** Monte Carlo standard error of anyChange, sqrt(p (1 - p) / permutations). */
  standardError: number;
  /** Wilson 95% interval of the family-wise rate. */
  wilson: [number, number];
}

/** Wilson score interval for a binomial proportion (z = 1.96). */
export function wilsonInterval(hits: number, n: number, z = 1.96): [number, number] {
  if (!n) return [0, 1];
  const p = hits / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Clopper-Pearson exact 95% interval for a binomial proportion (beta quantiles by bisection). */
export function clopperPearson(hits: number, n: number, level = 0.95): [number, number] {
  if (!n) return [0, 1];
  const tail = (1 - level) / 2;
  // P(X >= hits | p) = I_p(hits, n - hits + 1) rises with p; P(X <= hits | p) = 1 - I_p(hits + 1, n - hits) falls.
  const solve = (f: (p: number) => number, target: number) => solveIncreasing(f, target, 0, 1, 60);
  const lower = hits === 0 ? 0 : solve((p) => incompleteBeta(p, hits, n - hits + 1), tail);
  const upper = hits === n ? 1 : solve((p) => incompleteBeta(p, hits + 1, n - hits), 1 - tail);
  return [lower, upper];
}

/**
 * Runs the rule decisions (no child is built) on `permutations` seeded shuffles of the observations'
 * errors over their configurations, which destroys any link between structure and error.
 */
export function nullRefineRates(
  parent: LoadedSpace,
  spec: NetSpec,
  originalRatio: number,
  obs: readonly Observation[],
  options: { permutations: number; seed?: number | string; refine?: Pick<RefineOptions, 'rules' | 'seed' | 'alpha' | 'permutations' | 'tailShare'> },
): NullRates {
  const rng = makeRng(options.seed ?? 0, 'null-permutations');
  const errors = obs.map((o) => o.error);
  const applied = new Map<RefineRule, number>();
  let any = 0;
  for (let s = 0; s < options.permutations; s++) {
    const e = [...errors];
    for (let i = e.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [e[i], e[j]] = [e[j], e[i]];
    }
    const permuted = obs.map((o, i) => ({ ...o, error: e[i] }));
    const profile = widthProfile(permuted, best(permuted, defaultTopK(permuted.length)), spec.groups);
    const d = decideRules(parent, { obs: permuted, spec, originalRatio, profile }, options.refine ?? {});
    for (const o of d.outcomes) {
      if (o.applied) applied.set(o.rule, (applied.get(o.rule) ?? 0) + 1);
    }
    if (d.apply.length) any++;
  }
  const n = options.permutations;
  const rate = (m: Map<RefineRule, number>) => Object.fromEntries([...m].map(([k, v]) => [k, v / n]));
  const p = any / n;
  return { permutations: n, applied: rate(applied), anyChange: p, standardError: Math.sqrt((p * (1 - p)) / n), wilson: wilsonInterval(any, n) };
}

/** A simulated campaign's errors: a planted link to structure (or none) plus unit normal noise. */
export type ErrorModel = (sampled: { widths: number[]; flops: number; params: number }[], rng: () => number) => number[];

/** Standardised values (mean 0, sd 1). */
function standardised(values: readonly number[]): number[] {
  const m = values.reduce((s, x) => s + x, 0) / values.length;
  const sd = Math.sqrt(values.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, values.length - 1)) || 1;
  return values.map((x) => (x - m) / sd);
}

/** Pure noise: error is independent of every configuration. */
export const noiseErrors: ErrorModel = (sampled, rng) => sampled.map(() => 0.2 + 0.01 * normalDraw(rng));

/**
 * Error that falls with params inside the regime, with a population Spearman correlation of about `spearman`
 * (the Pearson correlation of normal scores is 2 sin(pi rho_s / 6)), pure noise otherwise.
 */
export function paramsEffect(spearman: number): ErrorModel {
  const r = 2 * Math.sin((Math.PI * spearman) / 6);
  return (sampled, rng) => {
    const z = standardised(sampled.map((s) => Math.log(s.params)));
    return z.map((v) => 0.2 + 0.01 * (-r * v + Math.sqrt(1 - r * r) * normalDraw(rng)));
  };
}

/**
 * Error that depends on FLOPs alone (budget drift, not structure): it falls with FLOPs and saturates (a tanh
 * of standardised log FLOPs, so not a shape the quadratic adjustment removes exactly), correlation `strength`.
 */
export function flopsOnlyEffect(strength = 0.8): ErrorModel {
  return (sampled, rng) => {
    const z = standardised(standardised(sampled.map((s) => Math.log(s.flops))).map((v) => Math.tanh(2 * v)));
    return z.map((v) => 0.2 + 0.01 * (-strength * v + Math.sqrt(1 - strength * strength) * normalDraw(rng)));
  };
}

export interface CampaignRates {
  campaigns: number;
  trials: number;
  /** Share of campaigns in which each rule changed the space. */
  applied: Record<string, number>;
  /** Share in which any rule changed the space, with its Wilson 95% interval. */
  anyChange: number;
  wilson: [number, number];
  /** Share in which some group's keep range was narrowed. */
  groupNarrowed: number;
}

/**
 * Simulated campaigns: each samples `trials` configurations of the space afresh (its own seed), draws errors
 * from `model` and runs the rule decisions; how often the space changes is the false-refinement rate on a
 * null model and the power on a planted one.
 */
export function simulatedRefineRates(
  parent: LoadedSpace,
  originalRatio: number,
  model: ErrorModel,
  options: { campaigns: number; trials: number; seed?: number; refine?: Pick<RefineOptions, 'rules' | 'alpha' | 'permutations' | 'tailShare'> & { adjustFlops?: boolean } },
): CampaignRates {
  const compiled = compileSpace(parent);
  const spec = compiled.net;
  const applied = new Map<RefineRule, number>();
  let any = 0;
  let narrowed = 0;
  const base = options.seed ?? 0;
  for (let c = 0; c < options.campaigns; c++) {
    const seed = base * 100_003 + c;
    const { configs } = sampleSpace(compiled, options.trials, seed);
    const sampled = configs.map((x) => ({ widths: x.widths as number[], flops: x.complexity.flops, params: x.complexity.params, activations: x.complexity.activations }));
    const errors = model(sampled, makeRng(seed, 'simulated-errors'));
    const obs: Observation[] = sampled.map((s, i) => ({ index: i, round: 0, error: errors[i], testError: null, widths: s.widths, flops: s.flops, params: s.params, activations: s.activations, ratio: s.flops / s.params }));
    const profile = widthProfile(obs, best(obs, defaultTopK(obs.length)), spec.groups);
    const d = decideRules(parent, { obs, spec, originalRatio, profile }, { ...options.refine, seed });
    for (const o of d.outcomes) if (o.applied) applied.set(o.rule, (applied.get(o.rule) ?? 0) + 1);
    if (d.apply.length) any++;
    if (d.outcomes.some((o) => o.rule === 'ranges' && o.applied)) narrowed++;
  }
  const n = options.campaigns;
  return {
    campaigns: n, trials: options.trials,
    applied: Object.fromEntries([...applied].map(([k, v]) => [k, v / n])),
    anyChange: any / n, wilson: wilsonInterval(any, n), groupNarrowed: narrowed / n,
  };
}
