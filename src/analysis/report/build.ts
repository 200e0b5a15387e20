/** A campaign report as data: its analysis, plots (Vega-Lite specs and rows), tables and sections; `report` and `serve` both draw it. */
import type { NetRef } from '../../nets/types.js';
import { formatCount } from '../../util/format.js';
import { analyseCampaign, type CampaignAnalysis } from '../analyse.js';
import { initLabel, type LoadedCampaign } from '../campaign.js';
import { compareEdfs, successiveRounds, type ComparedPopulation, type Population } from '../compare.js';
import { observations, populationTrials, type TrialLike } from '../population.js';
import { fidelity } from '../fidelity.js';
import { fidelitySection } from './fidelity-section.js';
import { compareWithReference, type ReferenceComparison } from '../reference.js';
import { bucketEdfPlot, curvesPlot, edfPlot, latencyPlot, metricBinsPlot, paretoPlot, profilePlot, ratioPlot, type Plot, type PlotData } from './charts.js';
import { escapeHtml as esc } from './escape.js';
import type { PageSection } from './page.js';
import { latencyFit, OUTLIER_MADS, predictionAccuracy, predictorLines, statedWindow, type PredictorRecord, type StatedWindow } from '../latency.js';
import { bestRows, bestTable, metricRows, metricTable, pct, populationRows, populationTable, ratioText, referenceRows, referenceSection, roundsHtml } from './tables.js';

export interface ReportCampaign {
  /** How the report names the campaign (its run directory's name). */
  name: string;
  spaceName?: string;
  description?: string;
  net: NetRef;
  seed: number;
  /** The campaign's rung plan (absent: flat), for the fidelity section's advice. */
  rungs?: { rungs: number; eta: number };
  trials: readonly TrialLike[];
  /** Reference seeds the campaign asked for, and why it has none where seeds were asked for but none fit the regime. */
  referenceSeeds?: number;
  referenceSkipped?: string;
  /** How its trials started (initLabel of its stored config); absent: scratch. */
  init?: string;
  /** A latency regime's window and the predictor the campaign recorded for it. */
  latency?: { window: StatedWindow; predictor?: PredictorRecord };
}

export interface ReportOptions {
  compare?: readonly ReportCampaign[];
  topK?: number;
  buckets?: number;
  /** Rounds the analyses (ratio, profiles, best trials) use; EDFs always show every round. Default: all. */
  rounds?: number[];
}

/** Draws one plot as HTML: an inline SVG in the written report, a chart the browser renders in `serve`. */
export type PlotHtml = (p: Plot) => string;

export interface BuiltReport {
  analysis: CampaignAnalysis;
  pops: ComparedPopulation[];
  plots: Plot[];
  /** The best candidates against the uniform reference; null without reference trials. */
  reference: ReferenceComparison | null;
  /** The rows behind the tables (written as CSV beside the report). */
  tables: PlotData[];
  /** The paragraph under the title (values escaped). */
  meta: string;
  sections(plot: PlotHtml): PageSection[];
  /** summary.json. */
  summary: Record<string, unknown>;
}

/** A loaded run as the report sees it. */
export function reportCampaign(c: LoadedCampaign): ReportCampaign {
  const space = c.config.space as { name?: unknown; description?: unknown } | null;
  return {
    name: c.name,
    spaceName: typeof space?.name === 'string' ? space.name : undefined,
    description: typeof space?.description === 'string' ? space.description : undefined,
    net: c.config.net,
    seed: c.config.seed,
    rungs: c.config.rungs,
    trials: c.trials,
    referenceSeeds: c.config.reference?.seeds,
    referenceSkipped: c.config.reference?.skipped,
    init: initLabel(c.config),
    ...latencyOf(c.config),
  };
}

function latencyOf(config: LoadedCampaign['config']): Pick<ReportCampaign, 'latency'> {
  const window = statedWindow(config.space);
  return window ? { latency: { window, ...(config.latencyModel ? { predictor: config.latencyModel } : {}) } } : {};
}

/** One EDF population per round where the campaign has several, then one per compared campaign. */
function populations(main: ReportCampaign, compare: readonly ReportCampaign[]): Population[] {
  const obs = observations(main.trials);
  const rounds = [...new Set(populationTrials(main.trials).map((t) => t.round))].sort((a, b) => a - b);
  // Where any campaign did not start from scratch, every label says how each started, so init modes compare at a glance.
  const all = [main, ...compare];
  const showInit = all.some((c) => (c.init ?? 'scratch') !== 'scratch');
  const name = (c: ReportCampaign) => (showInit ? `${c.name} [${c.init ?? 'scratch'}]` : c.name);
  const init = (c: ReportCampaign) => c.init ?? 'scratch';
  const pops: Population[] = rounds.length > 1
    ? rounds.map((r) => ({ label: `${name(main)} round ${r}`, init: init(main), obs: obs.filter((o) => o.round === r) }))
    : [{ label: name(main), init: init(main), obs }];
  for (const c of compare) pops.push({ label: name(c), init: init(c), obs: observations(c.trials) });
  return pops;
}

/** The EDF populations of the report: rounds of the main campaign and every compared campaign, with KS against the first. */
export function reportPopulations(main: ReportCampaign, compare: readonly ReportCampaign[] = []): ComparedPopulation[] {
  return compareEdfs(populations(main, compare));
}

/** The best candidates of a campaign (every round) against its uniform reference. */
export function reportReference(main: ReportCampaign): ReferenceComparison | null {
  return compareWithReference(main.trials, { planned: main.referenceSeeds });
}

/** The error-distribution section: what an EDF is, the population table and the EDF plot. */
export function edfSection(pops: readonly ComparedPopulation[], edfHtml: string): string {
  return `<p>EDF: the share of trials with validation error at or below x. The normalised EDF weights trials so that every parameter bin counts equally (as in “On Network Design Spaces for Visual Recognition”), which compares populations with different complexity mixes fairly; KS is the largest vertical gap to the first population, with its permutation p-value (how often shuffling which population each trial belongs to gives a gap at least as large); the normalised KS compares the two populations on the parameter bins both occupy (each shared bin counting equally), and the last column says which share of each population those bins hold.</p>
${populationTable(pops)}<p>Data: <a href="populations.csv">populations.csv</a></p>\n${edfHtml}`;
}

export function buildReport(main: ReportCampaign, options: ReportOptions = {}): BuiltReport {
  const compare = options.compare ?? [];
  const a = analyseCampaign(
    { name: main.name, net: main.net, trials: main.trials, seed: main.seed },
    { topK: options.topK, ratio: options.buckets ? { buckets: options.buckets } : undefined, rounds: options.rounds },
  );
  const pops = reportPopulations(main, compare);
  const curves = new Map(main.trials.map((t) => [t.index, t.curves ?? []]));
  const plots: Plot[] = [edfPlot(pops), ratioPlot(a), bucketEdfPlot(a), metricBinsPlot(a), profilePlot(a), paretoPlot(a), curvesPlot(a, curves)];
  // Only campaigns that measured latency (search --measure-latency) get the plot.
  const latency = latencyFit(main.trials);
  if (latency) plots.push(latencyPlot(latency));
  // Against all candidates of the campaign (every round): the best is chosen among all of them.
  const reference = reportReference(main);
  const tables: PlotData[] = [
    { file: 'populations.csv', rows: populationRows(pops) },
    { file: 'best.csv', rows: bestRows(a) },
    { file: 'metrics.csv', rows: metricRows(a) },
    ...(reference ? [{ file: 'reference.csv', rows: referenceRows(reference) }] : []),
  ];
  const rounds = successiveRounds(main.trials, main.seed);
  const enough = a.obs.length > 0;
  const fid = fidelity(main.trials, { rungs: main.rungs });
  const accuracy = main.latency ? predictionAccuracy(main.trials) : null;
  const sections = (draw: PlotHtml): PageSection[] => {
    const html = (id: string) => draw(plots.find((p) => p.id === id) as Plot);
    return [
      { id: 'reference', title: 'Best against the uniform reference', html: referenceSection(reference, main.referenceSkipped) },
      { id: 'edf', title: 'Error distributions', html: `${edfSection(pops, html('edf'))}\n${roundsHtml(rounds)}` },
      { id: 'fidelity', title: 'Fidelity: can rung 0 rank the candidates?', html: fidelitySection(fid, (main.rungs?.rungs ?? 1) > 1) },
      { id: 'ratio', title: 'FLOPs-to-parameter-bucket ratio', html: `${enough ? ratioText(a) : ''}\n${html('ratio')}\n${html('bucket-edf')}` },
      {
        id: 'metrics',
        title: 'Error against trial metrics',
        html: `<p>Good range: where the best trial's metric lies, by the pycls bootstrap (≥2500 subsamples of 25% of the trials, drawn with replacement; percentiles of the best trial's metric).</p>\n${html('metric-bins')}\n${enough ? metricTable(a) : ''}<p>Data: <a href="metrics.csv">metrics.csv</a></p>`,
      },
      { id: 'profile', title: 'Width profile of the winners', html: `<p>${esc(a.profile.trendText)}.${a.profile.monotone ? ` Non-decreasing stage widths: ${pct(a.profile.monotone.winners, 0)} of the best ${a.profile.k}, ${pct(a.profile.monotone.all, 0)} of all trials.` : ''}</p>\n${html('profile')}` },
      { id: 'pareto', title: 'Pareto front', html: html('pareto') },
      { id: 'curves', title: 'Training curves', html: html('curves') },
      ...(!main.latency ? [] : [{
        id: 'latency-predictor',
        title: 'Latency predictor',
        html: `<p>The candidates were sampled against predicted latency; each trial's latency was then measured.</p>\n<ul>${predictorLines(main.latency.window, main.latency.predictor, accuracy).map((l) => `<li>${esc(l.trim())}</li>`).join('')}</ul>`,
      }]),
      ...(!latency ? [] : [{
        id: 'latency',
        title: 'Latency against FLOPs',
        html: `<p>Batch-1 latency measured after training (${latency.points.length} trials): latency ≈ ${latency.interceptMs.toFixed(3)} ms + ${latency.msPerMflop.toFixed(4)} ms per MFLOP (R² ${latency.r2.toFixed(2)}); the intercept is what no pruning removes. Outliers (residual beyond ${OUTLIER_MADS} scaled MADs): ${latency.points.filter((p) => p.outlier).map((p) => `trial ${p.index}`).join(', ') || 'none'}.</p>\n${html('latency')}`,
      }]),
      {
        id: 'best',
        title: 'Best subnetworks',
        html: enough ? `${bestTable(a)}<p>Data: <a href="best.csv">best.csv</a></p>` : '<p class="missing">No completed trials yet.</p>',
      },
    ];
  };
  const net = `${main.net.family} on ${Array.isArray(main.net.input) ? main.net.input.join('x') : ''}, ${main.net.classes} classes`;
  const meta = `<p class="meta">Space <b>${esc(main.spaceName ?? '')}</b>${main.description ? ` — ${esc(main.description)}` : ''}<br>
Network ${esc(net)}. Trials: ${a.trialsTotal} (${a.obs.length} complete, ${a.failed} failed, ${a.pending} pending or running); best validation error ${pct(a.summary.min)}; the original network has ${formatCount(a.original.flops)} FLOPs and ${formatCount(a.original.params)} params.
${options.rounds ? `<br>Analyses below the EDFs use round${options.rounds.length > 1 ? 's' : ''} ${options.rounds.join(', ')} only.` : ''}
${main.init && main.init !== 'scratch' ? `<br>Trials start by ${esc(main.init)}.` : ''}
${compare.length ? `<br>Compared with: ${compare.map((c) => `<b>${esc(c.name)}</b>${c.init ? ` (${esc(c.init)})` : ''}`).join(', ')}.` : ''}
${a.obs.length < 24 ? `<br><span class="missing">Only ${a.obs.length} completed trials: the statistics below are fragile, and analyses that need more data say so.</span>` : ''}</p>`;
  const summary = {
    campaign: main.name, trials: a.trialsTotal, completed: a.obs.length, failed: a.failed, best: a.summary,
    ratio: { original: a.ratio.originalRatio, optimum: a.ratio.optimum, bucketOptimum: a.ratio.bucketOptimum, reasons: a.ratio.reasons },
    fidelity: fid,
    ...(main.latency ? { latencyPredictor: { window: main.latency.window, predictor: main.latency.predictor ?? null, accuracy } } : {}),
    profile: { trend: a.profile.trendText, stageTrend: a.profile.stageTrend, monotone: a.profile.monotone },
    populations: populationRows(pops),
    rounds: rounds.map(({ round, comparison: c }) => ({ round, lead: c.lead, leadPValue: c.leadPValue, ks: c.ks, ksPValue: c.pValue, better: c.better, text: c.text })),
    reference: reference
      ? { verdict: reference.verdict, text: reference.text, seeds: reference.seeds.length, mean: reference.mean, sd: reference.sd, best: reference.best[0]?.error ?? null,
          difference: reference.difference, critical: reference.critical, pValue: reference.pValue, alpha: reference.alpha, candidates: reference.candidates,
          basis: reference.basis, compared: reference.compared, bestVerdict: reference.bestVerdict, bestText: reference.bestText,
          finalists: reference.finalists?.finalists.map((f) => ({ rank: f.rank, candidate: f.candidate, seeds: f.seeds.length, mean: f.mean, sd: f.sd,
            difference: f.test?.difference ?? null, interval: f.interval, pValue: f.test?.p ?? null, adjusted: f.adjusted, better: f.better })) ?? null }
      : null,
  };
  return { analysis: a, pops, plots, reference, tables, meta, sections, summary };
}
