/** How often refinement changes a space on noise: rule decisions over populations whose errors are permuted across configurations. */
import type { NetSpec } from '../nets/types.js';
import type { LoadedSpace } from '../space/load.js';
import { makeRng } from '../util/rng.js';
import { best, defaultTopK, type Observation } from './population.js';
import { widthProfile } from './profiles.js';
import { decideRules, type RefineOptions, type RefineRule } from './refine.js';

export interface NullRates {
  permutations: number;
  /** Share of permutations in which the rule proposed a change on the selection half. */
  proposed: Record<string, number>;
  /** Share in which the rule changed the space (proposed and confirmed). */
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

/**
 * Runs the rule decisions (no child is built) on `permutations` seeded shuffles of the observations'
 * errors over their configurations, which destroys any link between structure and error.
 */
export function nullRefineRates(
  parent: LoadedSpace,
  spec: NetSpec,
  originalRatio: number,
  obs: readonly Observation[],
  options: { permutations: number; seed?: number | string; refine?: Pick<RefineOptions, 'rules' | 'seed' | 'rangeShare' | 'selectAlpha' | 'confirmAlpha' | 'ratio'> },
): NullRates {
  const rng = makeRng(options.seed ?? 0, 'null-permutations');
  const errors = obs.map((o) => o.error);
  const proposed = new Map<RefineRule, number>();
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
      if (o.proposed) proposed.set(o.rule, (proposed.get(o.rule) ?? 0) + 1);
      if (o.applied) applied.set(o.rule, (applied.get(o.rule) ?? 0) + 1);
    }
    if (d.apply.length) any++;
  }
  const n = options.permutations;
  const rate = (m: Map<RefineRule, number>) => Object.fromEntries([...m].map(([k, v]) => [k, v / n]));
  const p = any / n;
  return { permutations: n, proposed: rate(proposed), applied: rate(applied), anyChange: p, standardError: Math.sqrt((p * (1 - p)) / n), wilson: wilsonInterval(any, n) };
}
