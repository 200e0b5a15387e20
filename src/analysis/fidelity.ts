/**
 * Is the campaign's fidelity good enough to rank candidates? Its own seed noise (reference and finalist seeds), the
 * share of rung-0 variance across the sampled population that is structure rather than seed noise, and how well
 * rung 0 ranks the candidates promoted to the top rung.
 */
import { populationTrials, rungError, rungZeroError, type TrialLike } from './population.js';
import { incompleteBeta, midRanks, normalCdf, solveIncreasing } from './significance.js';

/** Below this structure share (point estimate) the ranking at rung 0 is mostly seed noise. */
export const STRUCTURE_FLOOR = 0.3;

/** Seed noise at one rung, pooled within configuration (one-way ANOVA's within-group mean square). */
export interface SeedNoise {
  rung: number;
  /** Pooled within-configuration sd of validation error; null without a configuration of two or more seeds. */
  sd: number | null;
  /** Degrees of freedom: seeds minus configurations, over configurations with a result at this rung. */
  df: number;
  /** Configurations (the reference, each finalist) and seeds that contributed. */
  configurations: number;
  seeds: number;
}

/** 1 − s_seed² / s_pop² at rung 0, with an F interval for the variance ratio. */
export interface StructureShare {
  /** Point estimate, clamped to [0, 1]; null when either variance is missing. */
  share: number | null;
  /** Confidence interval at `level`, clamped to [0, 1]. */
  interval: [number, number] | null;
  level: number;
  /** The sampled population's rung-0 sd (pooled within round) and its size. */
  populationSd: number | null;
  populationN: number;
  method: 'F interval of the variance ratio (normal errors, independent samples)';
}

/** Spearman correlation of rung-0 and top-rung validation errors over the candidates that reached the top rung. */
export interface RungRanking {
  topRung: number;
  n: number;
  rho: number | null;
  /** Fisher z interval at `level`, with the Fieller–Hartley–Pearson variance 1.06 / (n − 3); null below 4 pairs. */
  interval: [number, number] | null;
  level: number;
}

/**
 * The structure share at a rung above 0, among the candidates promoted to it, against the seed noise at that rung.
 * They were chosen on the rung below, which narrows their structural spread where structure matters: as an estimate
 * of the whole population's share at this fidelity it errs low.
 */
export interface PromotedStructure {
  rung: number;
  seed: SeedNoise;
  structure: StructureShare;
}

export interface Fidelity {
  topRung: number;
  seedNoise: { rung0: SeedNoise; top: SeedNoise };
  structure: StructureShare;
  /** Rungs 1 to the top, where both the promoted candidates and the seeds have results there. */
  promoted: PromotedStructure[];
  ranking: RungRanking;
  /** One line where the structure share is under STRUCTURE_FLOOR: the ranking is mostly noise, and what to raise. */
  warning: string | null;
}

/** The regularised F distribution's CDF with (d1, d2) degrees of freedom. */
export function fCdf(x: number, d1: number, d2: number): number {
  return x <= 0 ? 0 : incompleteBeta((d1 * x) / (d1 * x + d2), d1 / 2, d2 / 2);
}

/** The p-quantile of F(d1, d2), solved on the beta variable u = d1 x / (d1 x + d2). */
export function fQuantile(p: number, d1: number, d2: number): number {
  const u = solveIncreasing((v) => incompleteBeta(v, d1 / 2, d2 / 2), p, 0, 1);
  return (d2 * u) / (d1 * (1 - u));
}

/** The standard normal p-quantile. */
const normalQuantile = (p: number) => solveIncreasing(normalCdf, p, -10, 10, 80);

const finite = (x: number | null | undefined): x is number => x !== null && x !== undefined && Number.isFinite(x);

/** A trial's validation error at `rung`: its rung result there, or (a store without rung results) its own error at the top. */
function errorAt(t: TrialLike, rung: number, topRung: number): number | null {
  if (t.rungResults?.length) return rungError(t, rung);
  return rung === topRung && t.state === 'complete' && finite(t.valError) ? t.valError : null;
}

/**
 * The seed groups: the reference's seeds (by widths) and each finalist's seeds. The candidate a finalist re-seeds is
 * left out: it was chosen for its low error, so as one more seed it would inflate the spread.
 */
function seedGroups(trials: readonly TrialLike[]): TrialLike[][] {
  const groups = new Map<string, TrialLike[]>();
  for (const t of trials) {
    const key = t.role === 'reference' ? `reference/${t.widths.join(',')}` : t.role === 'finalist' ? `finalist/${t.finalistOf}` : null;
    if (key === null) continue;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  return [...groups.values()];
}

/** Pooled within-configuration seed sd at `rung` over the given groups. */
export function pooledSeedNoise(groups: readonly (readonly number[])[], rung = 0): SeedNoise {
  let ss = 0;
  let df = 0;
  let configurations = 0;
  let seeds = 0;
  for (const g of groups) {
    if (g.length < 2) continue;
    const mean = g.reduce((s, x) => s + x, 0) / g.length;
    ss += g.reduce((s, x) => s + (x - mean) ** 2, 0);
    df += g.length - 1;
    configurations++;
    seeds += g.length;
  }
  return { rung, sd: df > 0 ? Math.sqrt(ss / df) : null, df, configurations, seeds };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/**
 * The share of the population's variance that is structure, 1 − σ²_seed / σ²_pop. With normal errors the ratio of
 * sample variances, (s²_seed / σ²_seed) / (s²_pop / σ²_pop), is F(df_seed, n − 1), which inverts to an exact interval.
 */
export function structureShare(rounds: readonly (readonly number[])[], seed: Pick<SeedNoise, 'sd' | 'df'>, level = 0.95): StructureShare {
  const method = 'F interval of the variance ratio (normal errors, independent samples)' as const;
  // Each round samples its own space: the population variance is pooled within round, like the seed variance within configuration.
  const pooled = pooledSeedNoise(rounds);
  const n = rounds.reduce((k, r) => k + r.length, 0);
  const popVar = pooled.sd === null ? null : pooled.sd ** 2;
  const base = { level, populationSd: pooled.sd, populationN: n, method };
  if (popVar === null || !(popVar > 0) || seed.sd === null || seed.df < 1) return { ...base, share: null, interval: null };
  const ratio = seed.sd ** 2 / popVar;
  const tail = (1 - level) / 2;
  // σ²_seed/σ²_pop lies in [ratio / F_{1−tail}, ratio / F_{tail}] with (df_seed, df_pop); the share is one minus it.
  const ratioLow = ratio / fQuantile(1 - tail, seed.df, pooled.df);
  const ratioHigh = ratio / fQuantile(tail, seed.df, pooled.df);
  return { ...base, share: clamp01(1 - ratio), interval: [clamp01(1 - ratioHigh), clamp01(1 - ratioLow)] };
}

/** Spearman's ρ of paired values (Pearson on mid-ranks), with a Fisher z interval; null below 3 pairs or without spread. */
export function spearmanWithInterval(x: readonly number[], y: readonly number[], level = 0.95): { rho: number | null; interval: [number, number] | null; n: number } {
  const n = x.length;
  if (n < 3) return { rho: null, interval: null, n };
  const rx = midRanks(x);
  const ry = midRanks(y);
  const m = (n + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - m) * (ry[i] - m);
    sxx += (rx[i] - m) ** 2;
    syy += (ry[i] - m) ** 2;
  }
  if (!(sxx > 0 && syy > 0)) return { rho: null, interval: null, n };
  const rho = sxy / Math.sqrt(sxx * syy);
  if (n < 4) return { rho, interval: null, n };
  const z = Math.atanh(Math.max(-1 + 1e-12, Math.min(1 - 1e-12, rho)));
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(1.06 / (n - 3));
  return { rho, interval: [Math.tanh(z - half), Math.tanh(z + half)], n };
}

export interface FidelityOptions {
  /** The campaign's rung plan (its top rung, and the advice on what to raise); absent: the top rung the trials reached. */
  rungs?: { rungs: number; eta: number };
  level?: number;
}

/** The campaign's fidelity diagnostics from its trials alone (plain records). */
export function fidelity(trials: readonly TrialLike[], options: FidelityOptions = {}): Fidelity {
  const level = options.level ?? 0.95;
  const topRung = options.rungs
    ? options.rungs.rungs - 1
    : Math.max(0, ...trials.map((t) => t.rung ?? 0), ...trials.flatMap((t) => (t.rungResults ?? []).map((r) => r.rung)));
  const groups = seedGroups(trials);
  const at = (rung: number) => pooledSeedNoise(groups.map((g) => g.map((t) => errorAt(t, rung, topRung)).filter(finite)), rung);
  const rung0 = at(0);
  const top = topRung === 0 ? rung0 : at(topRung);
  const candidates = populationTrials(trials);
  // The candidates' errors grouped by round: each round samples its own space, so spreads are pooled within round.
  const byRound = (errorOf: (t: TrialLike) => number | null) =>
    [...new Set(candidates.map((t) => t.round))].map((round) => candidates.filter((t) => t.round === round).map(errorOf).filter(finite));
  const structure = structureShare(byRound(rungZeroError), rung0, level);
  const promotedAt: PromotedStructure[] = [];
  for (let rung = 1; rung <= topRung; rung++) {
    const seed = rung === topRung ? top : at(rung);
    const errors = byRound((t) => errorAt(t, rung, topRung));
    if (seed.sd === null || errors.every((r) => r.length < 2)) continue;
    promotedAt.push({ rung, seed, structure: structureShare(errors, seed, level) });
  }
  const promoted = topRung === 0 ? [] : populationTrials(trials).filter((t) => finite(errorAt(t, 0, topRung)) && finite(errorAt(t, topRung, topRung)));
  const rank = spearmanWithInterval(promoted.map((t) => errorAt(t, 0, topRung)!), promoted.map((t) => errorAt(t, topRung, topRung)!), level);
  return {
    topRung,
    seedNoise: { rung0, top },
    structure,
    promoted: promotedAt,
    ranking: { topRung, ...rank, level },
    warning: structure.share !== null && structure.share < STRUCTURE_FLOOR ? noiseWarning(structure, rung0, options.rungs) : null,
  };
}

const points = (x: number) => `${(100 * x).toFixed(2)}`;

function noiseWarning(s: StructureShare, seed: SeedNoise, plan?: { rungs: number; eta: number }): string {
  const raise = plan && plan.rungs > 1
    ? `raise rung 0's training: more --epochs at the same --rungs and --eta (rung 0 trains 1/${plan.eta ** (plan.rungs - 1)} of them), more training images (--subset, --synthetic-samples), or one more rung with --epochs × ${plan.eta}`
    : 'raise the training per candidate: more --epochs or more training images (--subset, --synthetic-samples), or train in --rungs so the promoted train longer';
  return `the ranking at rung 0 is mostly seed noise: structure explains ${(100 * s.share!).toFixed(0)}% of rung-0 variance ` +
    `(${(100 * s.level).toFixed(0)}% interval ${(100 * s.interval![0]).toFixed(0)}–${(100 * s.interval![1]).toFixed(0)}%; population sd ${points(s.populationSd!)} points over ${s.populationN} candidates, ` +
    `seed sd ${points(seed.sd!)} points, df ${seed.df}), under ${(100 * STRUCTURE_FLOOR).toFixed(0)}%; ${raise}`;
}

const percent = (x: number) => `${(100 * x).toFixed(0)}%`;

/** The diagnostics as lines (status prints them; the report lists them): seed sd, structure share, ranking, warning. */
export function fidelityLines(f: Fidelity): string[] {
  const { rung0, top } = f.seedNoise;
  const sd = (s: SeedNoise) => (s.sd === null ? `rung ${s.rung} not measured` : `rung ${s.rung} ${points(s.sd)} points (df ${s.df})`);
  const seeds = rung0.sd === null && top.sd === null
    ? 'seed sd: not measured (needs a configuration trained with 2 or more seeds: --reference-seeds or --finalist-seeds of 2 or more)'
    : `seed sd: ${f.topRung === 0 ? sd(rung0) : `${sd(rung0)}, ${sd(top)}`}, pooled within configuration over ${Math.max(rung0.configurations, top.configurations)} configuration(s) (reference, finalists)`;
  const s = f.structure;
  const structure = s.share === null
    ? `structure share of rung-0 variance: not measured (needs the seed sd at rung 0 and 2 or more candidates with spread; ${s.populationN} candidate(s))`
    : `structure share of rung-0 variance: ${percent(s.share)} (${percent(s.level)} F interval ${percent(s.interval![0])}–${percent(s.interval![1])}; population sd ${points(s.populationSd!)} points over ${s.populationN} candidates)`;
  const r = f.ranking;
  const ranking = f.topRung === 0
    ? []
    : [r.rho === null
        ? `rung 0 vs rung ${r.topRung}: no rank correlation over the ${r.n} promoted (needs 3 or more with spread at both rungs)`
        : `rung 0 vs rung ${r.topRung} over the ${r.n} promoted: Spearman ρ ${r.rho.toFixed(2)}${r.interval ? ` (${percent(r.level)} Fisher z interval ${r.interval[0].toFixed(2)} to ${r.interval[1].toFixed(2)})` : ''}`];
  const promoted = f.promoted.filter((p) => p.structure.share !== null).map(({ rung, seed, structure: p }) =>
    `structure share at rung ${rung} among the ${p.populationN} promoted: ${percent(p.share!)} (${percent(p.level)} F interval ${percent(p.interval![0])}–${percent(p.interval![1])}; ` +
    `their sd ${points(p.populationSd!)} points, seed sd ${points(seed.sd!)}); chosen on the rung below, so it errs low for the whole population`);
  // Without any seed noise there is nothing to set the population against: the one line says what is missing.
  if (rung0.sd === null && top.sd === null) return [seeds];
  return [seeds, structure, ...promoted, ...ranking, ...(f.warning ? [f.warning] : [])];
}
