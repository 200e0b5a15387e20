/** HTML tables and text blocks of the report; every value passes through escapeHtml. */
import { formatCount } from '../../util/format.js';
import type { CampaignAnalysis } from '../analyse.js';
import { finalistsRuleText, finalistsTable, verdictRuleText, type ReferenceComparison } from '../reference.js';
import type { ComparedPopulation, RoundComparison } from '../compare.js';
import { escapeHtml as esc } from './escape.js';
import { pValueText, signedPoints } from '../finalists.js';
import type { Row } from './charts.js';

export const pct = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(digits)}%`);
export const num = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

export function table(headers: readonly string[], rows: readonly (readonly unknown[])[], cls = ''): string {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${esc(cls)}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function populationTable(pops: readonly ComparedPopulation[]): string {
  return table(
    ['population', 'n', 'min', 'mean', 'p10', 'p25', 'median', 'p75', 'p90', 'KS vs first', 'KS p (permutation)', 'KS (normalised, shared bins)', 'in shared bins: first / this'],
    pops.map((p) => [
      p.label, p.summary.n, pct(p.summary.min), pct(p.summary.mean),
      pct(p.summary.quantiles?.p10), pct(p.summary.quantiles?.p25), pct(p.summary.quantiles?.p50), pct(p.summary.quantiles?.p75), pct(p.summary.quantiles?.p90),
      p.ks === null ? '–' : p.ks.toFixed(3), p.ksPValue === null ? '–' : p.ksPValue.toFixed(3), p.ksNormalized === null ? '–' : p.ksNormalized.toFixed(3),
      p.sharedShare ? `${pct(p.sharedShare.reference, 0)} / ${pct(p.sharedShare.population, 0)}` : '–',
    ]),
  );
}

export function populationRows(pops: readonly ComparedPopulation[]): Row[] {
  return pops.map((p) => ({
    population: p.label, n: p.summary.n, min: p.summary.min, mean: p.summary.mean,
    p10: p.summary.quantiles?.p10 ?? null, p25: p.summary.quantiles?.p25 ?? null, p50: p.summary.quantiles?.p50 ?? null,
    p75: p.summary.quantiles?.p75 ?? null, p90: p.summary.quantiles?.p90 ?? null, ks: p.ks, ks_p_value: p.ksPValue, ks_normalised: p.ksNormalized,
    shared_share_first: p.sharedShare?.reference ?? null, shared_share_this: p.sharedShare?.population ?? null,
    init: p.init ?? null,
  }));
}

/** The verdict on the FLOPs/param optimum, in words. */
export function ratioText(a: CampaignAnalysis): string {
  const r = a.ratio;
  const parts: string[] = [];
  const ratios = a.obs.map((o) => o.ratio).sort((x, y) => x - y);
  const q = (p: number) => ratios[Math.round(p * (ratios.length - 1))];
  parts.push(
    `The original network's own ratio is <b>${num(r.originalRatio)}</b> FLOPs per parameter.` +
      (ratios.length ? ` The sampled subnetworks' ratios have median ${num(q(0.5))} (quartiles ${num(q(0.25))}–${num(q(0.75))}); where these surround the original's ratio, a best bucket near it is what the sampling gives by construction, not evidence for the ratio; only an optimum the fit supports (below) is.` : ''),
  );
  if (r.bucketOptimum) {
    const b = r.bucketOptimum;
    parts.push(
      `Of ${r.buckets.length} parameter buckets, bucket ${b.bucket + 1} (ratio ${num(b.ratio)}, ${formatCount(b.paramsWindow[0])}–${formatCount(b.paramsWindow[1])} params over its 95% interval) ` +
        `has the lowest mean error, ${pct(b.meanError)}, chosen in ${pct(b.share, 0)} of bootstrap resamples; 95% interval of its ratio ${num(b.ratioInterval.lo)}–${num(b.ratioInterval.hi)}` +
        `${b.atEdge ? ' (an edge bucket: the optimum may lie outside the sampled ratios)' : ''}.`,
    );
  }
  if (r.optimum) {
    const o = r.optimum;
    parts.push(
      `<b>Optimum:</b> the fitted curve of error against log ratio has its minimum at <b>${num(o.ratio)}</b> (95% bootstrap interval ${num(o.interval.lo)}–${num(o.interval.hi)}, ` +
        `interior in ${pct(o.interiorShare, 0)} of resamples); curvature ${o.curvature.toFixed(3)} error per (ln ratio)², so error stays within ${pct(o.tolerance, 1)} of the minimum for ratios ${num(o.band[0])}–${num(o.band[1])}.`,
    );
  } else {
    parts.push(`<b>No optimal ratio is claimed:</b> ${r.reasons.map(esc).join('; ')}.`);
  }
  return parts.map((p) => `<p>${p}</p>`).join('\n');
}

export function bestRows(a: CampaignAnalysis): Row[] {
  return a.winners.map((o, rank) => ({
    rank: rank + 1, index: o.index, round: o.round, val_error: o.error, test_error: o.testError,
    flops: o.flops, params: o.params, activations: o.activations, flops_per_param: o.ratio, widths: o.widths.join(' '),
  }));
}

export function bestTable(a: CampaignAnalysis): string {
  return table(
    ['rank', 'trial', 'round', 'val error', 'test error', 'FLOPs', 'params', 'FLOPs/param', 'widths (group order)'],
    a.winners.map((o, i) => [i + 1, o.index, o.round, pct(o.error), pct(o.testError), formatCount(o.flops), formatCount(o.params), num(o.ratio), o.widths.join(',')]),
    'best',
  );
}

export function metricRows(a: CampaignAnalysis): Row[] {
  return a.metrics.map((m) => ({
    metric: m.key, label: m.label, good_lo: m.goodRange?.lo ?? null, good_mid: m.goodRange?.mid ?? null, good_hi: m.goodRange?.hi ?? null,
    min: m.extent?.[0] ?? null, max: m.extent?.[1] ?? null, spearman: m.rankCorrelation,
  }));
}

export function metricTable(a: CampaignAnalysis): string {
  const f = (x: number | undefined, key: string) => (x === undefined ? '–' : key.startsWith('keep.') || key === 'ratio' ? num(x, 3) : key.startsWith('width.') ? num(x, 0) : formatCount(x));
  return table(
    ['metric', 'good range 2.5%', 'median', '97.5%', 'all trials min', 'max', 'Spearman ρ with error'],
    a.metrics.map((m) => [m.label, f(m.goodRange?.lo, m.key), f(m.goodRange?.mid, m.key), f(m.goodRange?.hi, m.key), f(m.extent?.[0], m.key), f(m.extent?.[1], m.key), m.rankCorrelation === null ? '–' : m.rankCorrelation.toFixed(2)]),
  );
}

/** Rows of reference.csv: the reference's seeds and the best candidates, each marked by its role. */
export function referenceRows(r: ReferenceComparison): Row[] {
  return [
    ...r.seeds.map((s) => ({ role: 'reference', trial: s.index, seed: s.seed, val_error: s.error, test_error: s.testError, flops: r.flops, widths: r.widths?.join(' ') ?? null })),
    ...r.best.map((o) => ({ role: 'sample', trial: o.index, seed: null, val_error: o.error, test_error: o.testError, flops: o.flops, widths: o.widths.join(' ') })),
    ...(r.finalists?.finalists ?? []).flatMap((f) =>
      f.runs.map((x) => ({ role: 'finalist', trial: x.trial, seed: x.seed, val_error: x.error, test_error: x.testError, flops: f.flops, widths: f.widths.join(' ') }))),
  ];
}

const points = (x: number | null) => (x === null ? '–' : signedPoints(x));

/** The finalists against the reference, seed by seed, with each finalist's test (empty without finalists). */
export function finalistsHtml(r: ReferenceComparison): string {
  const t = finalistsTable(r);
  if (!t) return '';
  const rows = t.rows.map((row) => [
    row.role === 'reference' ? 'uniform reference' : `finalist #${row.rank}`, row.candidate ?? '–', row.flops === null ? '–' : formatCount(row.flops),
    row.params === null ? '–' : formatCount(row.params), row.widths?.join(',') ?? '–', ...row.errors.map((e) => pct(e)),
    row.mean === null ? '–' : `${pct(row.mean)}${row.sd !== null ? ` ± ${pct(row.sd)}` : ''}`,
    row.difference === null ? '–' : `${points(row.difference)} [${points(row.interval![0])}, ${points(row.interval![1])}]`,
    row.p === null ? '–' : pValueText(row.p), row.adjusted === null ? '–' : pValueText(row.adjusted), row.method ?? '–',
  ]);
  const level = Math.round(100 * (1 - 2 * r.alpha));
  return `<h3>Finalists, re-seeded</h3>
${table(['', 'candidate trial', 'FLOPs', 'params', 'widths (group order)', ...t.seedIndices.map((k) => `seed ${k}`), 'mean ± sd', `finalist − reference, points (${level}% interval)`, 'p (one-sided)', 'Holm p', 'seeds compared'], rows, 'finalists')}
<p>${esc(finalistsRuleText(r.alpha))} The best-of-N rule on the search's own errors, for comparison: ${esc(r.bestText)}.</p>`;
}

/**
 * The answer a user asks of a search first: are the best candidates better than uniform pruning at the same FLOPs,
 * by more than noise? `skipped` says why a campaign has no reference.
 */
export function referenceSection(r: ReferenceComparison | null, skipped?: string): string {
  if (!r) {
    return `<p class="missing">This campaign has no uniform reference trial${skipped ? `: ${esc(skipped)}` : ' (created with --no-reference, or before reference trials existed)'}, so the best candidates cannot be compared with uniform pruning here.</p>`;
  }
  const k = r.seeds.length;
  const diff = (x: number) => (r.mean === null ? '–' : `${x - r.mean <= 0 ? '' : '+'}${(100 * (x - r.mean)).toFixed(2)} points`);
  const rows: unknown[][] = [
    ['uniform reference', `${k} of ${r.planned ?? r.created} seeds`, `${pct(r.mean)}${r.sd !== null ? ` ± ${pct(r.sd)} (sd)` : ''}`, pct(r.testMean), r.flops === null ? '–' : formatCount(r.flops), '', r.widths?.join(',') ?? '–'],
    ...r.best.map((o, i) => [`best #${i + 1} candidate${r.basis === 'top-rung' ? ` (rung ${r.topRung})` : ''}`, `trial ${o.index}`, pct(o.error), pct(o.testError), formatCount(o.flops), diff(o.error), o.widths.join(',')]),
  ];
  const seeds = r.seeds.map((s) => ['reference', s.index, s.seed ?? '–', pct(s.error), pct(s.testError)]);
  const verdict = { better: 'Beats uniform', noise: 'Within noise', 'not-better': 'Not better than uniform', insufficient: 'Not enough data' }[r.verdict];
  return `<p><b>${esc(verdict)}:</b> ${esc(r.text)}.</p>
${finalistsHtml(r)}
${table(['', 'trials', 'val error', 'test error', 'FLOPs', 'vs reference mean', 'widths (group order)'], rows, 'reference')}
<p>${esc(verdictRuleText(r.alpha))}${r.critical !== null ? ` Here N = ${r.candidates} candidates and K = ${k} seeds: the best must lie more than ${r.critical.toFixed(2)} reference sds below the reference mean.` : ''}${r.basis === 'top-rung' ? ` In this rung campaign the reference trains at the final budget, so the best is taken among the ${r.compared} candidates that reached the top rung, at their top-rung error; they were selected from all ${r.candidates} by noisy lower-rung errors, and N counts all of them, which keeps the rate at ${Math.round(100 * r.alpha)}% or less.` : ''}
The uniform reference keeps one ratio of every channel group (rounded as the space rounds widths), the widest whose FLOPs stay inside the regime, trained with the campaign's settings; its seeds are listed below and are left out of every other statistic in this report.</p>
${table(['role', 'trial', 'seed', 'val error', 'test error'], seeds, 'reference-seeds')}
<p>Data: <a href="reference.csv">reference.csv</a></p>`;
}

/** Each refined round against its parent at equal budget: is the child better? (empty for one round) */
export function roundsHtml(rounds: readonly { round: number; comparison: RoundComparison }[]): string {
  if (!rounds.length) return '';
  const rows = rounds.map(({ round, comparison: c }) => [
    `round ${round} vs ${round - 1}`, `${c.child.n} vs ${c.parent.n}`, `${pct(c.child.min)} vs ${pct(c.parent.min)}`, `${pct(c.child.mean)} vs ${pct(c.parent.mean)}`,
    c.lead.toFixed(3), c.leadPValue.toFixed(3), c.better ? 'better' : 'not shown better',
  ]);
  return `<h3>Refined rounds against their parents</h3>
${table(['', 'n (child vs parent)', 'min val error', 'mean', 'EDF gap D+', 'one-sided p (permutation)', `decision at ${Math.round(100 * rounds[0].comparison.alpha)}%`], rows, 'rounds')}
<p>D+ is the largest amount by which the child round's rung-0 validation-error EDF lies above its parent's (the child has more candidates at or below some error); its p-value counts how often ${rounds[0].comparison.permutations} seeded shuffles of the round labels give a gap at least as large. Each line: ${rounds.map((r) => `round ${r.round}: ${esc(r.comparison.text)}`).join('; ')}.</p>`;
}
