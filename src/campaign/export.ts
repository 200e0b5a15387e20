/**
 * Flat exports of a campaign's trials: trials.csv (one column per channel group) and trials.jsonl. Both list the uniform
 * reference's seeds too, with role 'reference': leave them out of any statistic of the sampled population.
 */
import { appendFileSync, copyFileSync, existsSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { CampaignReader } from './store.js';
import type { CampaignConfig, TrialRecord } from './types.js';

/** The CSV row of one trial: widths spread into one column per group, named by the group. */
export function trialRow(groups: string[], t: TrialRecord, rungs = 0): Record<string, string | number | null> {
  const row: Record<string, string | number | null> = {
    index: t.index,
    round: t.round,
    role: t.role,
    state: t.state,
    attempts: t.attempts,
    seed: t.seed,
    flops: t.complexity.flops,
    params: t.complexity.params,
    activations: t.complexity.activations,
    flops_per_param: t.complexity.params > 0 ? t.complexity.flops / t.complexity.params : null,
    val_error: t.valError,
    test_error: t.testError,
    train_loss: t.trainLoss,
    // Epochs trained: a trial in rungs has a curve per rung segment, and its rung results say how far it got.
    epochs: t.rungResults.length ? Math.max(...t.rungResults.map((r) => r.epochs)) : t.curves.length,
    rung: t.rung,
    images: t.rungResults.reduce((n, r) => n + r.images, 0),
    finalist_of: t.finalistOf ?? null,
    seed_index: t.seedIndex ?? null,
    wall_seconds: t.wallSeconds,
    images_per_second: t.imagesPerSecond,
    latency_ms: t.latencyMs ?? null,
    backend: t.backend,
    worker: t.worker,
    error: t.error,
  };
  if (t.metrics) {
    // Label-free trials: val_error is the metric named in ranked_on; the others sit beside it.
    row.ranked_on = t.metrics.rankedOn ?? null;
    row.val_error_labelled = t.metrics.valErrorLabelled ?? null;
    row.val_disagreement = t.metrics.valDisagreement ?? null;
    row.val_distill = t.metrics.valDistill ?? null;
    row.real_widths = t.metrics.widths ? t.metrics.widths.join(' ') : null;
  }
  // Rung campaigns: each rung's validation error, blank where the trial did not train that rung.
  for (let r = 0; r < rungs; r++) row[`val_error_r${r}`] = t.rungResults.find((x) => x.rung === r)?.valError ?? null;
  groups.forEach((g, i) => (row[g] = t.widths[i]));
  return row;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

const CSV_CAST = { number: (x: number) => String(x) };

/** Fixed for a campaign (the incremental export appends rows under one header); distill campaigns add their side metrics. */
function csvColumns(config: CampaignConfig): string[] {
  const empty = emptyTrial(config.groups.length);
  if (config.init?.mode === 'distill') empty.metrics = {};
  return Object.keys(trialRow(config.groups, empty, config.rungs?.rungs ?? 0));
}

/** Rewrites runs/NAME/trials.csv and trials.jsonl from the given records; readers never see half a file. */
export function exportTrials(dir: string, config: CampaignConfig, trials: TrialRecord[]): { csv: string; jsonl: string } {
  const csv = join(dir, 'trials.csv');
  const jsonl = join(dir, 'trials.jsonl');
  const rows = trials.map((t) => trialRow(config.groups, t, config.rungs?.rungs ?? 0));
  writeAtomically(csv, stringify(rows, { header: true, columns: csvColumns(config), cast: CSV_CAST }));
  writeAtomically(jsonl, trials.map((t) => JSON.stringify(t)).join('\n') + (trials.length ? '\n' : ''));
  return { csv, jsonl };
}

interface Line {
  version: string;
  csv: string;
  json: string;
}

/**
 * The same two files, kept by a running coordinator: each export reads only the trials whose row changed since the
 * last (by the store's fingerprints), re-serialises only those, and rewrites each file from the first changed trial
 * on (a kernel copy of the unchanged prefix, then the rest), still by rename, so an export costs about the trials at
 * and after the running ones, not every trial's curves. The files are byte for byte what exportTrials writes.
 */
export class TrialsExport {
  private readonly lines = new Map<number, Line>();
  /** What the files hold now, in index order (null before the first write). */
  private written: Line[] | null = null;
  private readonly columns: string[];
  private readonly header: string;

  constructor(
    private readonly dir: string,
    private readonly config: CampaignConfig,
  ) {
    this.columns = csvColumns(config);
    this.header = stringify([], { header: true, columns: this.columns });
  }

  write(store: CampaignReader): { csv: string; jsonl: string } {
    const csv = join(this.dir, 'trials.csv');
    const jsonl = join(this.dir, 'trials.jsonl');
    const versions = store.trialVersions();
    for (const index of this.lines.keys()) if (!versions.has(index)) this.lines.delete(index);
    const changed = [...versions].filter(([index, v]) => this.lines.get(index)?.version !== v).map(([index]) => index);
    for (const t of store.trialsAt(changed)) {
      this.lines.set(t.index, {
        version: versions.get(t.index)!,
        csv: stringify([trialRow(this.config.groups, t, this.config.rungs?.rungs ?? 0)], { columns: this.columns, cast: CSV_CAST }),
        json: JSON.stringify(t) + '\n',
      });
    }
    const ordered = [...this.lines.keys()].sort((a, b) => a - b).map((i) => this.lines.get(i)!);
    const before = this.written && existsSync(csv) && existsSync(jsonl) ? this.written : [];
    let same = 0;
    while (same < ordered.length && same < before.length && ordered[same] === before[same]) same++;
    if (!(same === ordered.length && same === before.length && this.written)) {
      const rest = ordered.slice(same);
      const kept = before.slice(0, same);
      const bytes = (key: 'csv' | 'json') => kept.reduce((n, l) => n + Buffer.byteLength(l[key]), 0);
      rewriteFrom(csv, same ? Buffer.byteLength(this.header) + bytes('csv') : 0, (same ? '' : this.header) + rest.map((l) => l.csv).join(''));
      rewriteFrom(jsonl, same ? bytes('json') : 0, rest.map((l) => l.json).join(''));
      this.written = ordered;
    }
    return { csv, jsonl };
  }
}

/** The file's first `keep` bytes followed by `tail`, swapped in by rename (readers never see half a file). */
function rewriteFrom(path: string, keep: number, tail: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  if (keep > 0) {
    copyFileSync(path, tmp);
    truncateSync(tmp, keep);
    appendFileSync(tmp, tail);
  } else {
    writeFileSync(tmp, tail);
  }
  renameSync(tmp, path);
}

function emptyTrial(groups: number): TrialRecord {
  return {
    index: 0, round: 0, role: 'sample', widths: new Array<number>(groups).fill(0), seed: 0,
    complexity: { flops: 0, params: 0, activations: 0 }, state: 'waiting', attempts: 0,
    valError: null, testError: null, trainLoss: null, curves: [], wallSeconds: null, imagesPerSecond: null,
    backend: null, worker: null, error: null, startedAt: null, finishedAt: null, rung: 0, rungResults: [],
  };
}
