/** The live view of runs: each run's states, rungs, progress, ETA and failures, and the main run's EDF, reference and running curves. */
import { edfSection, reportCampaign, reportPopulations, reportReference, type ReportCampaign } from '../analysis/report/build.js';
import { edfPlot, trialCurvesPlot, type Plot } from '../analysis/report/charts.js';
import { plotHtml } from '../analysis/report/page.js';
import { referenceSection } from '../analysis/report/tables.js';
import { epochsDone } from '../campaign/progress.js';
import type { StateCounts } from '../campaign/store.js';
import type { TrialRecord } from '../campaign/types.js';
import type { RunWatcher } from './watch.js';

/** Finished trials the ETA's rate comes from: recent enough to follow a change of pace, enough to be steady. */
const RATE_WINDOW = 20;
/** Failures listed per run (newest first); the count covers all of them. */
const FAILURES_SHOWN = 50;

/** Fields a campaign with rungs adds to its trials; absent in campaigns without them. */
type RungFields = { rung?: number | null; rungResults?: unknown[] | null };

export interface RungCount {
  rung: number;
  counts: Omit<StateCounts, 'total'> & { total: number };
}

export interface RunStatus {
  name: string;
  counts: StateCounts;
  /** Trials per role (sample, reference, finalist where a campaign has them). */
  roles: Record<string, number>;
  /** Trials per rung and state, where the campaign's trials carry rungs; empty otherwise. */
  rungs: RungCount[];
  /** Finished (complete, failed, pruned) share of all trials. */
  done: number;
  /** Seconds until every waiting and running trial finished at the recent pace; null when nothing runs or the pace is unknown. */
  etaSeconds: number | null;
  /** Trials finished per hour over the last finished ones. */
  perHour: number | null;
  best: { index: number; valError: number } | null;
  running: { index: number; role: string; rung: number | null; epochs: number; worker: string | null; startedAt: string | null }[];
  failures: { index: number; role: string; rung: number | null; attempts: number; error: string; finishedAt: string | null }[];
  failed: number;
}

export interface LiveMain {
  name: string;
  /** The report's reference section (HTML, values escaped). */
  reference: string;
  /** The report's error-distribution section with a chart placeholder (HTML). */
  edf: string;
  /** Curves of the running trials (or the latest finished ones when nothing runs), a chart placeholder (HTML). */
  curves: string;
  plots: LivePlot[];
}

/** What the browser needs to draw a plot: the Vega-Lite spec, or why there is none. */
export interface LivePlot {
  id: string;
  title: string;
  missing?: string;
  spec?: unknown;
}

export interface LiveState {
  runs: RunStatus[];
  main: LiveMain;
}

const rungOf = (t: TrialRecord) => (t as TrialRecord & RungFields).rung ?? null;

function rate(trials: readonly TrialRecord[]): number | null {
  const times = trials.filter((t) => t.finishedAt && t.state !== 'running' && t.state !== 'waiting').map((t) => Date.parse(t.finishedAt as string)).filter(Number.isFinite).sort((a, b) => a - b).slice(-RATE_WINDOW);
  if (times.length < 2 || times[times.length - 1] <= times[0]) return null;
  return (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000);
}

export function runStatus(w: RunWatcher): RunStatus {
  const trials = w.trials();
  const counts = w.counts();
  const roles: Record<string, number> = {};
  for (const t of trials) roles[t.role] = (roles[t.role] ?? 0) + 1;
  const rungs = new Map<number, RungCount>();
  for (const t of trials) {
    const r = rungOf(t);
    if (r === null) continue;
    const entry = rungs.get(r) ?? { rung: r, counts: { waiting: 0, running: 0, complete: 0, failed: 0, pruned: 0, paused: 0, total: 0 } };
    (entry.counts[t.state]++, entry.counts.total++);
    rungs.set(r, entry);
  }
  const perSecond = rate(trials);
  const remaining = counts.waiting + counts.running;
  const etaSeconds = counts.running > 0 && perSecond ? remaining / perSecond : remaining === 0 ? 0 : null;
  let best: RunStatus['best'] = null;
  for (const t of trials) {
    if (t.role === 'sample' && t.state === 'complete' && t.valError !== null && (!best || t.valError < best.valError)) best = { index: t.index, valError: t.valError };
  }
  const failedTrials = trials.filter((t) => t.state === 'failed');
  return {
    name: w.name, counts, roles, rungs: [...rungs.values()].sort((a, b) => a.rung - b.rung),
    done: counts.total ? (counts.complete + counts.failed + counts.pruned) / counts.total : 1,
    etaSeconds, perHour: perSecond === null ? null : perSecond * 3600, best,
    running: trials.filter((t) => t.state === 'running').map((t) => ({ index: t.index, role: t.role, rung: rungOf(t), epochs: epochsDone(t.curves), worker: t.worker, startedAt: t.startedAt })),
    failures: failedTrials
      .sort((a, b) => (b.finishedAt ?? '').localeCompare(a.finishedAt ?? '') || b.index - a.index)
      .slice(0, FAILURES_SHOWN)
      .map((t) => ({ index: t.index, role: t.role, rung: rungOf(t), attempts: t.attempts, error: t.error ?? '', finishedAt: t.finishedAt })),
    failed: failedTrials.length,
  };
}

/** A watched run as the report sees it. */
export function watchedCampaign(w: RunWatcher): ReportCampaign {
  return reportCampaign({ dir: w.dir, name: w.name, config: w.config, rounds: [], trials: w.trials() });
}

/** A chart the page renders from the plot's spec; the figure and its caption are the report's. */
export function chartHtml(p: Plot): string {
  return plotHtml(p, '<div class="chart"></div>');
}

export function livePlot(p: Plot): LivePlot {
  return p.spec && !p.missing ? { id: p.id, title: p.title, spec: p.spec } : { id: p.id, title: p.title, missing: p.missing ?? 'nothing to draw' };
}

/** The live part of the main run's report, compared with the other runs: cheap enough to redo on every change. */
export function liveMain(main: RunWatcher, compare: readonly RunWatcher[]): LiveMain {
  const campaign = watchedCampaign(main);
  const pops = reportPopulations(campaign, compare.map(watchedCampaign));
  const edf = edfPlot(pops);
  const trials = main.trials();
  const running = trials.filter((t) => t.state === 'running');
  const shown = running.length ? running : trials.filter((t) => t.state === 'complete').sort((a, b) => (b.finishedAt ?? '').localeCompare(a.finishedAt ?? '')).slice(0, 5);
  const curves = trialCurvesPlot(shown.map((t) => ({ index: t.index, curves: t.curves })), running.length ? 'the running trials' : 'the last finished trials', 'live-curves', 'live-curves.csv');
  return {
    name: main.name,
    reference: referenceSection(reportReference(campaign), campaign.referenceSkipped),
    edf: edfSection(pops, chartHtml(edf)),
    curves: chartHtml(curves),
    plots: [livePlot(edf), livePlot(curves)],
  };
}

export function liveState(runs: readonly RunWatcher[], main: number): LiveState {
  return { runs: runs.map(runStatus), main: liveMain(runs[main], runs.filter((_, i) => i !== main)) };
}
